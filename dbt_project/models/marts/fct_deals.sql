with

deals as (

    select * from {{ ref('int_deals__measured') }}

),

final as (

    select
        deal_id,
        source_system,
        crm_deal_id,
        pipeline,
        deal_name,
        owner_id,
        owner_name,
        customer_id,
        company_id,
        lead_source,
        channel,
        status,
        crm_stage,
        current_funnel_stage,
        created_at,
        closed_at,
        cohort_month,
        closed_month,
        amount,
        currency,
        fx_rate,
        amount_reporting_rounded as amount_reporting,
        highest_stage_order,
        highest_funnel_stage,
        sales_cycle_days,
        touches_before_close,
        is_first_win_of_customer
    from deals

)

select * from final
