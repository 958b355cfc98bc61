{#- Spend per month in the reporting currency, unrounded: mart_cac publishes it in cents,
    mart_unit_economics divides by the exact figure (value_to_cac is a rate). -#}

with

spend as (

    select * from {{ ref('int_spend__converted') }}

),

final as (

    -- The scale of amount_reporting, on every adapter (PostgreSQL's sum has none).
    select
        month,
        cast(
            sum(case when category = 'marketing' then amount_reporting else 0 end)
            as numeric(38, 16)
        ) as marketing_spend,
        cast(
            sum(case when category = 'sales' then amount_reporting else 0 end)
            as numeric(38, 16)
        ) as sales_spend,
        cast(sum(amount_reporting) as numeric(38, 16)) as total_spend
    from spend
    group by month

)

select * from final
