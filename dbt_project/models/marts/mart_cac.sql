with

deals as (

    select * from {{ ref('int_deals__measured') }}

),

monthly_spend as (

    select * from {{ ref('int_spend__monthly') }}

),

months as (

    select * from {{ ref('int_months') }}

),

new_customers as (

    select
        closed_month as month,
        count(*) as new_customers
    from deals
    where is_first_win_of_customer
    group by closed_month

),

final as (

    select
        months.month,
        {{ round_money('coalesce(monthly_spend.marketing_spend, 0)') }} as marketing_spend,
        {{ round_money('coalesce(monthly_spend.sales_spend, 0)') }} as sales_spend,
        {{ round_money('coalesce(monthly_spend.total_spend, 0)') }} as total_spend,
        coalesce(new_customers.new_customers, 0) as new_customers,
        {{ money_ratio(
            'coalesce(monthly_spend.total_spend, 0)',
            'coalesce(new_customers.new_customers, 0)'
        ) }} as cac
    from months
    left join monthly_spend on months.month = monthly_spend.month
    left join new_customers on months.month = new_customers.month

)

select * from final
