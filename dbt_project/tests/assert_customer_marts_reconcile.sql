-- The customer marts agree with mart_cac and with themselves: a cohort's new customers are
-- the month's new customers of CAC, repeat customers are some of them, unit economics
-- shows the same month's figures as the marts it takes them from.
with

cac as (

    select * from {{ ref('mart_cac') }}

),

retention as (

    select * from {{ ref('mart_customer_retention') }}

),

unit_economics as (

    select * from {{ ref('mart_unit_economics') }}

),

failures as (

    select
        'new customers of retention and cac' as check_name,
        cac.month
    from cac
    full outer join retention on cac.month = retention.cohort_month
    where
        cac.month is null
        or retention.cohort_month is null
        or cac.new_customers <> retention.new_customers

    union all

    select
        'repeat customers within new customers' as check_name,
        cohort_month as month
    from retention
    where repeat_customers_12m < 0 or repeat_customers_12m > new_customers

    union all

    select
        'unit economics rows' as check_name,
        unit_economics.month
    from unit_economics
    left join retention on unit_economics.month = retention.cohort_month
    where
        retention.cohort_month is null
        or unit_economics.is_mature <> retention.is_mature
        or coalesce(unit_economics.customer_value_12m, -1)
        <> coalesce(retention.customer_value_12m, -1)

)

select * from failures
