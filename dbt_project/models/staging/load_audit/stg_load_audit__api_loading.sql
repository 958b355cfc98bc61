with

source as (

    select * from {{ source('load_audit', '_api_loading') }}

),

final as (

    select
        source_system,
        stream,
        loaded_through,
        as_of as stopped_as_of,
        reason
    from source

)

select * from final
