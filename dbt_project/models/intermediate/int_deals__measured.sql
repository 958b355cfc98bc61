{#- Deals with every deal-level measure, amounts unrounded: the marts aggregate from here
    and round only at the end. fct_deals publishes it with amounts in cents. -#}

{{ per_deal_model() }}

with

deals as (

    select * from {{ ref('int_deals__enriched') }}{{ where_changed_deal(marked=true) }}

),

spells as (

    select * from {{ ref('int_deal_stage_spells') }}{{ where_changed_deal(marked=true) }}

),

touches as (

    select * from {{ ref('int_deal_touches') }}{{ where_changed_deal(marked=true) }}

),

funnel_stages as (

    select * from {{ ref('int_funnel_stages') }}

),

last_stage as (

    select max(stage_order) as stage_order from funnel_stages

),

spell_reach as (

    select
        deal_id,
        max(stage_order) as highest_spell_order
    from spells
    group by deal_id

),

reached as (

    -- METRICS.md "Reached": a won deal reached every stage; otherwise the highest stage of
    -- its spells or of its current CRM stage, and at least stage 1.
    select
        deals.deal_id,
        case
            when deals.status = 'won' then (select last_stage.stage_order from last_stage)
            else greatest(
                coalesce(spell_reach.highest_spell_order, 1),
                coalesce(deals.current_stage_order, 1)
            )
        end as highest_stage_order
    from deals
    left join spell_reach on deals.deal_id = spell_reach.deal_id

),

first_wins as (

    select
        deal_id,
        row_number() over (partition by customer_id order by closed_at, deal_id) as win_number
    from deals
    where status = 'won'

),

final as (

    select
        deals.deal_id,
        deals.source_system,
        deals.crm_deal_id,
        deals.pipeline,
        deals.deal_name,
        deals.owner_id,
        deals.owner_name,
        deals.customer_id,
        deals.company_id,
        deals.lead_source,
        deals.channel,
        deals.status,
        deals.crm_stage,
        deals.current_funnel_stage,
        deals.created_at,
        deals.closed_at,
        deals.updated_at,
        deals.created_month as cohort_month,
        deals.closed_month,
        deals.amount,
        deals.currency,
        deals.fx_rate,
        deals.amount_reporting,
        -- As fct_deals shows it: rounded once when the deal is built, not on every read
        -- of the view (publish and its guard read every deal's).
        {{ round_money('deals.amount_reporting') }} as amount_reporting_rounded,
        reached.highest_stage_order,
        funnel_stages.funnel_stage as highest_funnel_stage,
        case
            when deals.closed_at is not null
                then {{ days_between('deals.created_at', 'deals.closed_at') }}
        end as sales_cycle_days,
        case
            when deals.closed_at is not null
                then {{ seconds_between('deals.created_at', 'deals.closed_at') }}
        end as sales_cycle_seconds,
        touches.touches_before_close,
        coalesce(first_wins.win_number = 1, false) as is_first_win_of_customer
    from deals
    inner join reached on deals.deal_id = reached.deal_id
    inner join funnel_stages on reached.highest_stage_order = funnel_stages.stage_order
    inner join touches on deals.deal_id = touches.deal_id
    left join first_wins on deals.deal_id = first_wins.deal_id

)

select
    *,
    {{ build_mark() }} as _build_mark
from final
