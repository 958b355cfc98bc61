{#- Customers by the month of their first win and what they bought within 365 days of it
    (METRICS.md, "Customers and retention"). Rates and values of immature cohorts are NULL:
    their 12 months are not over at the as-of time. -#}

with

cohorts as (

    select * from {{ ref('int_customer_cohorts') }}

),

final as (

    select
        cohort_month,
        new_customers,
        repeat_customers_12m,
        case
            when is_mature and new_customers > 0
                then cast(repeat_customers_12m as {{ type_double() }}) / new_customers
        end as repeat_rate_12m,
        {{ round_money('first_win_amount') }} as first_win_amount,
        {{ round_money('follow_on_amount_12m') }} as follow_on_amount_12m,
        case
            when is_mature
                then {{ money_ratio('first_win_amount + follow_on_amount_12m', 'new_customers') }}
        end as customer_value_12m,
        is_mature
    from cohorts

)

select * from final
