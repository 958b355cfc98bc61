with

deals as (

    select * from {{ ref('int_deals__measured') }}

),

months as (

    select * from {{ ref('int_months') }}

),

created as (

    select
        cohort_month as month,
        count(*) as opportunities
    from deals
    group by cohort_month

),

closed as (

    select
        closed_month as month,
        sum(case when status = 'won' then 1 else 0 end) as deals_won,
        sum(case when status = 'lost' then 1 else 0 end) as deals_lost,
        sum(case when status = 'won' then amount_reporting end) as won_amount,
        count(case when status = 'won' then amount_reporting end) as won_deals_with_amount,
        {{
            avg_days("case when status = 'won' then sales_cycle_seconds end")
        }} as avg_sales_cycle_days,
        avg(case when status = 'won' then touches_before_close end) as touches_per_won_deal
    from deals
    where closed_month is not null
    group by closed_month

),

monthly as (

    select
        months.month,
        coalesce(created.opportunities, 0) as opportunities,
        coalesce(closed.deals_won, 0) as deals_won,
        coalesce(closed.deals_lost, 0) as deals_lost,
        closed.won_amount,
        closed.won_deals_with_amount,
        cast(closed.avg_sales_cycle_days as {{ type_double() }}) as avg_sales_cycle_days,
        cast(closed.touches_per_won_deal as {{ type_double() }}) as touches_per_won_deal
    from months
    left join created on months.month = created.month
    left join closed on months.month = closed.month

),

rates as (

    select
        *,
        case
            when deals_won + deals_lost > 0
                then cast(deals_won as {{ type_double() }}) / (deals_won + deals_lost)
        end as win_rate,
        case
            when won_deals_with_amount > 0
                then cast(won_amount as {{ type_double() }}) / won_deals_with_amount
        end as avg_deal_size_unrounded
    from monthly

),

velocity as (

    select
        *,
        case
            when avg_sales_cycle_days > 0
                then opportunities * win_rate * avg_deal_size_unrounded / avg_sales_cycle_days
        end as velocity_per_day
    from rates

),

final as (

    select
        month,
        opportunities,
        deals_won,
        deals_lost,
        win_rate,
        {{ money_ratio('won_amount', 'won_deals_with_amount') }} as avg_deal_size,
        avg_sales_cycle_days,
        touches_per_won_deal,
        {{ round_money('velocity_per_day') }} as sales_velocity_per_day,
        {{ round_money('velocity_per_day * ' ~ days_in_month('month')) }}
            as sales_velocity_per_month
    from velocity

)

select * from final
