{#- The month spine every month-grain mart shares: every month from the first to the last
    month in which a deal was created or closed or a spend line is dated. -#}

with

deals as (

    select * from {{ ref('int_deals__enriched') }}

),

spend as (

    select * from {{ ref('int_spend__unioned') }}

),

data_months as (

    select created_month as month from deals
    union all
    select closed_month as month from deals
    where closed_month is not null
    union all
    select {{ month_of('spend_date') }} as month from spend

),

bounds as (

    select
        min(month) as first_month,
        max(month) as last_month
    from data_months

),

spine as (

    {{ month_series('(select first_month from bounds)', '(select last_month from bounds)') }}

),

final as (

    select series_month as month from spine

)

select * from final
