with

source as (

    select * from {{ source('reference', 'stage_mapping') }}

),

final as (

    select
        source_system,
        pipeline,
        crm_stage,
        funnel_stage,
        probability
    from source

)

select * from final
