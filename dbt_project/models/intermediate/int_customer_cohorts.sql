{#- Customers by cohort month, the month of their first win (METRICS.md, "Customers and
    retention"): one row per month of the spine, amounts unrounded so that the marts round
    once. The first win is the CAC section's (int_deals__measured.is_first_win_of_customer). -#}

with

deals as (

    select * from {{ ref('int_deals__measured') }}

),

months as (

    select * from {{ ref('int_months') }}

),

first_wins as (

    select
        customer_id,
        deal_id as first_win_deal_id,
        closed_at as first_win_closed_at,
        closed_month as cohort_month,
        amount_reporting as first_win_amount
    from deals
    where is_first_win_of_customer

),

follow_on_wins as (

    -- Any other won deal of the customer closed at the first win's instant or later, and at
    -- most 365 days after it; a won deal closed in the same instant as the first win
    -- (which lost the tie on deal_id) is a follow-on.
    select
        first_wins.customer_id,
        count(*) as follow_on_wins_12m,
        sum(deals.amount_reporting) as follow_on_amount_12m
    from first_wins
    inner join deals
        on first_wins.customer_id = deals.customer_id
        and first_wins.first_win_deal_id != deals.deal_id
        and deals.status = 'won'
        and first_wins.first_win_closed_at <= deals.closed_at
        and deals.closed_at <= {{ dbt.dateadd('day', 365, 'first_wins.first_win_closed_at') }}
    group by first_wins.customer_id

),

customers as (

    select
        first_wins.customer_id,
        first_wins.cohort_month,
        first_wins.first_win_amount,
        follow_on_wins.follow_on_amount_12m,
        follow_on_wins.customer_id is not null as is_repeat_customer_12m
    from first_wins
    left join follow_on_wins on first_wins.customer_id = follow_on_wins.customer_id

),

cohorts as (

    select
        cohort_month,
        count(*) as new_customers,
        count(case when is_repeat_customer_12m then customer_id end) as repeat_customers_12m,
        sum(first_win_amount) as first_win_amount,
        sum(follow_on_amount_12m) as follow_on_amount_12m
    from customers
    group by cohort_month

),

final as (

    -- Amounts: a deal without amount adds nothing (0 when no deal of the cohort has one);
    -- the scale of amount_reporting, on every adapter (PostgreSQL's sum has none).
    -- Mature: the 12 months after the cohort month's last customer are over at the as-of time.
    select
        months.month as cohort_month,
        coalesce(cohorts.new_customers, 0) as new_customers,
        coalesce(cohorts.repeat_customers_12m, 0) as repeat_customers_12m,
        cast(coalesce(cohorts.first_win_amount, 0) as numeric(38, 16)) as first_win_amount,
        cast(
            coalesce(cohorts.follow_on_amount_12m, 0) as numeric(38, 16)
        ) as follow_on_amount_12m,
        {{ dbt.dateadd('day', 365, dbt.dateadd('month', 1, 'months.month')) }}
        <= {{ as_of() }} as is_mature
    from months
    left join cohorts on months.month = cohorts.cohort_month

)

select * from final
