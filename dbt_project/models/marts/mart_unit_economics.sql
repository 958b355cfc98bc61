{#- What a month's new customers are worth in their first 12 months against what they cost
    (METRICS.md, "Customers and retention"): CAC from mart_cac, the 12-month value from
    mart_customer_retention, one row per month of the spine. -#}

with

cac as (

    select * from {{ ref('mart_cac') }}

),

retention as (

    select * from {{ ref('mart_customer_retention') }}

),

cohorts as (

    select * from {{ ref('int_customer_cohorts') }}

),

spend as (

    select * from {{ ref('int_spend__monthly') }}

),

final as (

    -- value_to_cac = (cohort value / new customers) / (spend / new customers): the count
    -- cancels, so it is the cohort's 12-month value over the month's spend, both exact (a
    -- rate from unrounded money, as velocity). NULL for an immature cohort, without new
    -- customers (no CAC) or without spend (a CAC of 0 divides nothing).
    select
        cac.month,
        cac.new_customers,
        cac.total_spend,
        cac.cac,
        retention.customer_value_12m,
        case
            when retention.customer_value_12m is not null and spend.total_spend > 0
                then cast(
                    cohorts.first_win_amount + cohorts.follow_on_amount_12m
                    as {{ type_double() }}
                ) / cast(spend.total_spend as {{ type_double() }})
        end as value_to_cac,
        retention.is_mature
    from cac
    inner join retention on cac.month = retention.cohort_month
    inner join cohorts on cac.month = cohorts.cohort_month
    left join spend on cac.month = spend.month

)

select * from final
