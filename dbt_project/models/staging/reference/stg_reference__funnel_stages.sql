with

source as (

    select * from {{ source('reference', 'funnel_stages') }}

),

final as (

    select
        stage_order,
        funnel_stage,
        description
    from source

)

select * from final
