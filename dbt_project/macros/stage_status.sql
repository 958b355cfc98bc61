{#- The status a deal has by its CRM stage alone, for exports without a status column
    (HubSpot's and Zoho's deals exports): a stage mapped to `lost` is lost, one mapped to
    the last funnel stage (closed_won) is won, any other mapped stage is open. One row
    per stage mapping row; a stage missing from the mapping has none (and fails the
    build by its all_crm_stages_mapped test, naming it). -#}
{% macro stage_statuses() -%}
    select
        trim(stage_mapping.source_system) as source_system,
        trim(stage_mapping.pipeline) as pipeline,
        trim(stage_mapping.crm_stage) as crm_stage,
        case
            when lower(trim(stage_mapping.funnel_stage)) = 'lost' then 'lost'
            when cast(funnel_stages.stage_order as integer) = (
                select max(cast(stage_order as integer)) from {{ ref('stg_reference__funnel_stages') }}
            ) then 'won'
            else 'open'
        end as status
    from {{ ref('stg_reference__stage_mapping') }} as stage_mapping
    left join {{ ref('stg_reference__funnel_stages') }} as funnel_stages
        on lower(trim(stage_mapping.funnel_stage)) = lower(trim(funnel_stages.funnel_stage))
{%- endmacro %}
