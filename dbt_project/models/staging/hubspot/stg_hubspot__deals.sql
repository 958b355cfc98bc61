{#- Property values are strings: amounts are cast to exact decimals, times (UTC with
    milliseconds) to timestamps. The status comes from the stage's metadata, and closedate
    counts only once the stage is closed (HubSpot fills it on open deals with the expected
    close date). -#}

with

deals as (

    select * from {{ source('hubspot', 'hubspot__deals') }}

),

stages as (

    select * from {{ source('hubspot', 'hubspot__pipeline_stages') }}

),

pipelines as (

    select * from {{ source('hubspot', 'hubspot__pipelines') }}

),

owners as (

    select * from {{ source('hubspot', 'hubspot__owners') }}

),

parsed as (

    select
        -- ids
        _source_system as source_system,
        record_id as crm_deal_id,
        {{ json_text('record', 'properties', 'hubspot_owner_id') }} as crm_owner_id,
        {{ json_text('record', 'associations', 'companies', 'results', '0', 'id') }}
            as company_id,
        {{ json_text('record', 'properties', 'dealstage') }} as stage_id,
        {{ json_text('record', 'properties', 'pipeline') }} as pipeline_id,

        -- attributes
        {{ json_text('record', 'properties', 'dealname') }} as deal_name,
        {{ json_text('record', 'properties', var('hubspot_lead_source_property', 'lead_source')) }}
            as lead_source,
        {{ json_text('record', 'archived') }} as archived,

        -- amounts
        {{ json_text('record', 'properties', 'amount') }} as amount,
        {{ json_text('record', 'properties', 'deal_currency_code') }} as currency,

        -- timestamps
        {{ json_text('record', 'properties', 'createdate') }} as createdate,
        {{ json_text('record', 'properties', 'closedate') }} as closedate,
        {{ json_text('record', 'properties', 'hs_lastmodifieddate') }} as lastmodifieddate
    from deals

),

stage_metadata as (

    select
        _source_system as source_system,
        record_id as stage_id,
        {{ json_text('record', 'label') }} as stage_label,
        {{ json_text('record', 'metadata', 'isClosed') }} = 'true' as is_closed,
        cast({{ json_text('record', 'metadata', 'probability') }} as numeric(9, 6))
            as probability
    from stages

),

final as (

    select
        parsed.source_system,
        parsed.source_system || ':' || parsed.crm_deal_id as deal_id,
        parsed.crm_deal_id,
        case
            when parsed.crm_owner_id is not null
                then parsed.source_system || ':' || parsed.crm_owner_id
        end as owner_id,
        parsed.company_id,
        nullif(trim(parsed.deal_name), '') as deal_name,
        {{ json_text('pipelines.record', 'label') }} as pipeline,
        stage_metadata.stage_label as crm_stage,
        case
            when not stage_metadata.is_closed then 'open'
            when stage_metadata.probability >= 1 then 'won'
            when stage_metadata.is_closed then 'lost'
        end as status,
        nullif(
            trim(
                coalesce({{ json_text('owners.record', 'firstName') }}, '')
                || ' '
                || coalesce({{ json_text('owners.record', 'lastName') }}, '')
            ),
            ''
        ) as owner_name,
        nullif(trim(parsed.lead_source), '') as lead_source,
        cast(nullif(trim(parsed.amount), '') as numeric(38, 6)) as amount,
        upper(nullif(trim(parsed.currency), '')) as currency,
        {{ to_utc_timestamp("nullif(parsed.createdate, '')") }} as created_at,
        case
            when stage_metadata.is_closed
                then {{ to_utc_timestamp("nullif(parsed.closedate, '')") }}
        end as closed_at,
        {{ to_utc_timestamp("nullif(parsed.lastmodifieddate, '')") }} as updated_at
    from parsed
    left join stage_metadata
        on parsed.source_system = stage_metadata.source_system
        and parsed.stage_id = stage_metadata.stage_id
    left join pipelines
        on parsed.source_system = pipelines._source_system
        and parsed.pipeline_id = pipelines.record_id
    left join owners
        on parsed.source_system = owners._source_system
        and parsed.crm_owner_id = owners.record_id
    -- Archived (deleted) in HubSpot: gone from the figures, as from the CRM.
    where coalesce(parsed.archived, 'false') <> 'true'

)

select * from final
