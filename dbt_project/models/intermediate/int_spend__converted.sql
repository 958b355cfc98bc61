with

spend as (

    select * from {{ ref('int_spend__unioned') }}

),

fx_rates as (

    select * from {{ ref('stg_reference__fx_rates') }}

),

dated as (

    select
        *,
        {{ month_of('spend_date') }} as fx_month
    from spend

),

final as (

    select
        dated.source_system,
        dated.spend_date,
        dated.fx_month as month,
        dated.channel,
        dated.category,
        dated.currency,
        dated.amount,
        dated.fx_month,
        case
            when dated.currency = '{{ var("reporting_currency") }}' then cast(1 as numeric(28, 10))
            else fx_rates.rate_to_reporting
        end as fx_rate,
        cast(
            dated.amount * case
                when dated.currency = '{{ var("reporting_currency") }}'
                    then cast(1 as numeric(28, 10))
                else fx_rates.rate_to_reporting
            end
            as numeric(38, 16)
        ) as amount_reporting
    from dated
    left join fx_rates
        on dated.fx_month = fx_rates.month
        and dated.currency = upper(trim(fx_rates.currency))

)

select * from final
