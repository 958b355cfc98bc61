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

deal_counts as (

    select
        count(*) as deals,
        sum(case when status in ('won', 'lost') then 1 else 0 end) as closed_deals
    from deals

),

velocity_totals as (

    select
        sum(opportunities) as opportunities,
        sum(deals_won + deals_lost) as closed_deals
    from velocity

),

spend_totals as (

    -- Spend is rounded to cents per month in the mart: allow half a cent per month.
    select
        (select sum(total_spend) from cac) as mart_spend,
        (select sum(amount_reporting) from spend) as source_spend,
        (select count(*) from cac) * 0.005 as tolerance

),

checks as (

    select
        'fct_deals rows' as check_name,
        (select count(*) from fct) <> deal_counts.deals as failed
    from deal_counts

    union all

    select
        'opportunities' as check_name,
        velocity_totals.opportunities <> deal_counts.deals as failed
    from velocity_totals
    cross join deal_counts

    union all

    select
        'closed deals' as check_name,
        velocity_totals.closed_deals <> deal_counts.closed_deals as failed
    from velocity_totals
    cross join deal_counts

    union all

    select
        'total spend' as check_name,
        abs(coalesce(mart_spend, 0) - coalesce(source_spend, 0)) > tolerance as failed
    from spend_totals

),

final as (

    select *
    from checks
    where failed

)

select * from final
