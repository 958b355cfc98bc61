-- The marts agree with each other: every new customer sits under exactly one channel,
-- reps add up to the company, every completed spell is in a duration cell.
with

cac as (

    select * from {{ ref('mart_cac') }}

),

cac_by_channel as (

    select * from {{ ref('mart_cac_by_channel') }}

),

velocity as (

    select * from {{ ref('mart_sales_velocity') }}

),

reps as (

    select * from {{ ref('mart_rep_performance') }}

),

durations as (

    select * from {{ ref('mart_stage_duration') }}

),

spells as (

    select * from {{ ref('fct_deal_stage_spells') }}

),

channel_customers as (

    select
        month,
        sum(new_customers) as new_customers
    from cac_by_channel
    group by month

),

rep_totals as (

    select
        month,
        sum(deals_created) as deals_created,
        sum(deals_won) as deals_won,
        sum(deals_lost) as deals_lost
    from reps
    group by month

),

failures as (

    select
        'new customers by channel' as check_name,
        cac.month
    from cac
    inner join channel_customers on cac.month = channel_customers.month
    where cac.new_customers <> channel_customers.new_customers

    union all

    select
        'rep totals' as check_name,
        velocity.month
    from velocity
    inner join rep_totals on velocity.month = rep_totals.month
    where
        velocity.opportunities <> rep_totals.deals_created
        or velocity.deals_won <> rep_totals.deals_won
        or velocity.deals_lost <> rep_totals.deals_lost

    union all

    select
        'completed spells' as check_name,
        null as month
    from (
        select sum(spells_completed) as in_mart
        from durations
    ) as mart
    where mart.in_mart <> (
        select count(*)
        from spells as completed
        where completed.exited_at is not null and completed.exit_kind <> 'won'
    )

)

select * from failures
