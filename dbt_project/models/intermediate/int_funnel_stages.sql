with

funnel_stages as (

    select * from {{ ref('stg_reference__funnel_stages') }}

),

final as (

    select
        cast(stage_order as integer) as stage_order,
        lower(trim(funnel_stage)) as funnel_stage,
        description,
        stage_order = max(stage_order) over () as is_last_stage
    from funnel_stages

)

select * from final
