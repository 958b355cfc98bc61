with

stage_mapping as (

    select * from {{ ref('stg_reference__stage_mapping') }}

),

funnel_stages as (

    select * from {{ ref('int_funnel_stages') }}

),

final as (

    select
        trim(stage_mapping.source_system) as source_system,
        trim(stage_mapping.pipeline) as pipeline,
        trim(stage_mapping.crm_stage) as crm_stage,
        lower(trim(stage_mapping.funnel_stage)) as funnel_stage,
        funnel_stages.stage_order,
        coalesce(funnel_stages.is_last_stage, false) as is_won_stage,
        lower(trim(stage_mapping.funnel_stage)) = 'lost' as is_lost,
        stage_mapping.probability
    from stage_mapping
    left join funnel_stages
        on lower(trim(stage_mapping.funnel_stage)) = funnel_stages.funnel_stage

)

select * from final
