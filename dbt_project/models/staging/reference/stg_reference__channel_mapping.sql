with

source as (

    select * from {{ source('reference', 'channel_mapping') }}

),

final as (

    select
        lead_source,
        channel
    from source

)

select * from final
