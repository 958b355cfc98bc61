{#- What did not make it into the figures, counted: nothing is dropped silently. -#}

with

quarantine as (

    select * from {{ ref('stg_load_audit__quarantine') }}

),

deals as (

    select * from {{ ref('int_deals__enriched') }}

),

stage_changes as (

    select * from {{ ref('int_deal_stage_changes__unioned') }}

),

activities as (

    select * from {{ ref('int_activities__unioned') }}

),

orphans as (

    select * from {{ ref('int_orphan_rows__counted') }}

),

still_loading as (

    select * from {{ ref('stg_load_audit__api_loading') }}

),

checks as (

    select
        'quarantined_rows' as check_name,
        count(*) as affected_rows,
        'source rows not loaded (see raw._quarantine for file, line, reason)' as effect
    from quarantine

    union all

    -- Per deal id from int_orphan_rows__counted (kept per deal: an incremental night
    -- recounts tonight's ids only), plus the rows without a deal id.
    select
        'stage_changes_without_deal' as check_name,
        cast(
            (select coalesce(sum(stage_changes_without_deal), 0) from orphans)
            + (
                select count(*) from stage_changes
                where deal_id is null
            )
            as bigint
        ) as affected_rows,
        'stage changes of deals missing from the deals files: not in any mart' as effect

    union all

    select
        'activities_without_deal' as check_name,
        cast(
            (select coalesce(sum(activities_without_deal), 0) from orphans)
            + (
                select count(*) from activities
                where deal_id is null
            )
            as bigint
        ) as affected_rows,
        'activities of deals missing from the deals files: no touch counted' as effect

    union all

    select
        'deals_without_amount' as check_name,
        count(*) as affected_rows,
        'deals without amount: counted, left out of amount averages and totals' as effect
    from deals
    where amount is null

    union all

    select
        'open_deals_now_in_lost_stage' as check_name,
        count(*) as affected_rows,
        'open deals whose current CRM stage maps to lost: not in the pipeline snapshot'
            as effect
    from deals
    where status = 'open' and current_funnel_stage = 'lost'

    union all

    select
        'sources_still_loading' as check_name,
        count(*) as affected_rows,
        'API streams a night left before their end (daily API budget): what changed after '
        || 'their loaded_through is not in the figures yet; the next nights continue'
        || coalesce(
            ': ' || {{ dbt.listagg(
                "source_system || ' ' || stream || ' through ' || "
                ~ "coalesce(loaded_through, 'nothing yet')",
                "'; '",
                "order by source_system, stream"
            ) }},
            ''
        ) as effect
    from still_loading

),

final as (

    select
        check_name,
        affected_rows,
        effect
    from checks

)

select * from final
