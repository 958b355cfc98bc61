{#- Stage changes and activities whose deal id no deal has (mart_data_quality counts
    them): one row per such deal id. Per deal id, so an incremental night recounts only
    the ids in int_changed_deals, which hold the deal of every staged row written or
    removed tonight: an orphan staged tonight is counted, and a deal staged tonight clears
    its orphans. Rows without a deal id have no deal to be rebuilt with: mart_data_quality
    counts those itself, every night. -#}

{{ per_deal_model() }}

with

deals as (

    select * from {{ ref('int_deals__enriched') }}{{ where_changed_deal(marked=true) }}

),

stage_changes as (

    select * from {{ ref('int_deal_stage_changes__unioned') }}{{ where_changed_deal() }}

),

activities as (

    select * from {{ ref('int_activities__unioned') }}{{ where_changed_deal() }}

),

orphan_changes as (

    select
        deal_id,
        count(*) as stage_changes_without_deal
    from stage_changes
    where
        deal_id is not null
        and not exists (
            select 1 from deals
            where deals.deal_id = stage_changes.deal_id
        )
    group by deal_id

),

orphan_activities as (

    select
        deal_id,
        count(*) as activities_without_deal
    from activities
    where
        deal_id is not null
        and not exists (
            select 1 from deals
            where deals.deal_id = activities.deal_id
        )
    group by deal_id

),

final as (

    select
        coalesce(orphan_changes.deal_id, orphan_activities.deal_id) as deal_id,
        coalesce(orphan_changes.stage_changes_without_deal, 0) as stage_changes_without_deal,
        coalesce(orphan_activities.activities_without_deal, 0) as activities_without_deal
    from orphan_changes
    full outer join orphan_activities
        on orphan_changes.deal_id = orphan_activities.deal_id

)

select
    *,
    {{ build_mark() }} as _build_mark
from final
