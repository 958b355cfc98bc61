{#- When each deal sat in which CRM stage while open: one row per stage change (or, for a
    deal without history, one row for its current stage), from the change (the deal's
    creation for the first) to the next change, cut at the close. Feeds the daily pipeline
    snapshot (docs/metric-decisions.md, "Pipeline snapshot"). -#}

{{ per_deal_model() }}

with

deals as (

    select * from {{ ref('int_deals__enriched') }}{{ where_changed_deal(marked=true) }}

),

stage_changes as (

    select * from {{ ref('int_stage_changes__mapped') }}{{ where_changed_deal(marked=true) }}

),

from_history as (

    select
        stage_changes.deal_id,
        case
            when stage_changes.change_seq = 1 then deals.created_at
            when stage_changes.changed_at > deals.created_at then stage_changes.changed_at
            else deals.created_at
        end as segment_start,
        lead(stage_changes.changed_at) over (
            partition by stage_changes.deal_id order by stage_changes.change_seq
        ) as next_change_at,
        deals.closed_at,
        stage_changes.funnel_stage,
        stage_changes.stage_order,
        stage_changes.is_lost,
        stage_changes.probability,
        deals.amount_reporting
    from stage_changes
    inner join deals on stage_changes.deal_id = deals.deal_id

),

without_history as (

    select
        deals.deal_id,
        deals.created_at as segment_start,
        cast(null as timestamp) as next_change_at,
        deals.closed_at,
        deals.current_funnel_stage as funnel_stage,
        deals.current_stage_order as stage_order,
        deals.current_funnel_stage = 'lost' as is_lost,
        deals.current_stage_probability as probability,
        deals.amount_reporting
    from deals
    where not exists (
        select 1 from stage_changes
        where stage_changes.deal_id = deals.deal_id
    )

),

segments as (

    select * from from_history
    union all
    select * from without_history

),

final as (

    select
        deal_id,
        funnel_stage,
        stage_order,
        probability,
        amount_reporting,
        segment_start,
        case
            when next_change_at is null then closed_at
            when closed_at is null then next_change_at
            when closed_at < next_change_at then closed_at
            else next_change_at
        end as segment_end
    from segments
    where
        not is_lost
        and (closed_at is null or segment_start < closed_at)

)

select
    *,
    {{ build_mark() }} as _build_mark
from final
