-- Nothing is lost between the canonical deals and spend and the marts.
with

deals as (

    select * from {{ ref('int_deals__unioned') }}

),

spend as (

    select * from {{ ref('int_spend__converted') }}

),

velocity as (

    select * from {{ ref('mart_sales_velocity') }}

),

cac as (

    select * from {{ ref('mart_cac') }}

),

fct as (

    select * from {{ ref('fct_deals') }}

),

checks as (

    select 'fct_deals rows' as check_name,
        (select count(*) from fct) as mart_value,
        (select count(*) from deals) as source_value
    union all
    select 'opportunities',
        (select sum(opportunities) from velocity),
        (select count(*) from deals)
    union all
    select 'closed deals',
        (select sum(deals_won + deals_lost) from velocity),
        (select count(*) from deals where status in ('won', 'lost'))
    union all
    -- Spend is rounded per month in the mart: allow half a cent per month.
    select 'total spend (cents)',
        (select round(sum(total_spend) * 100) from cac),
        (select round(sum(amount_reporting) * 100) from spend)

)

select * from checks
where mart_value <> source_value
    and not (check_name = 'total spend (cents)'
        and abs(mart_value - source_value) <= (select count(*) from cac) * 0.5)
