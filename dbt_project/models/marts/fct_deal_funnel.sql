{{ per_deal_model(build_mark=false) }}

with

deals as (

    select * from {{ ref('int_deals__measured') }}{{ where_changed_deal(marked=true) }}

),

spells as (

    select * from {{ ref('int_deal_stage_spells') }}{{ where_changed_deal(marked=true) }}

),

funnel_stages as (

    select * from {{ ref('int_funnel_stages') }}

),

first_entries as (

    select
        deal_id,
        stage_order,
        min(entered_at) as first_entered_at
    from spells
    group by deal_id, stage_order

),

final as (

    select
        deals.deal_id,
        funnel_stages.funnel_stage,
        funnel_stages.stage_order,
        deals.cohort_month,
        -- NULL when the stage counts as reached without a recorded entry (a skip, no history).
        case
            when first_entries.first_entered_at is not null then first_entries.first_entered_at
            when funnel_stages.is_last_stage and deals.status = 'won' then deals.closed_at
        end as reached_at,
        case
            when funnel_stages.is_last_stage then null
            else deals.highest_stage_order > funnel_stages.stage_order
        end as advanced_to_next
    from deals
    inner join funnel_stages
        on deals.highest_stage_order >= funnel_stages.stage_order
    left join first_entries
        on deals.deal_id = first_entries.deal_id
        and funnel_stages.stage_order = first_entries.stage_order

)

select * from final
