with

source as (

    select * from {{ source('reference', 'fx_rates') }}

),

final as (

    select
        month,
        currency,
        rate_to_reporting
    from source

)

select * from final
