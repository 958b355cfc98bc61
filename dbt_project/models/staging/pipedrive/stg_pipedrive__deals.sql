with

deals as (

    select * from {{ source('pipedrive', 'pipedrive__deals') }}

),

stages as (

    select * from {{ source('pipedrive', 'pipedrive__stages') }}

),

pipelines as (

    select * from {{ source('pipedrive', 'pipedrive__pipelines') }}

),

users as (

    select * from {{ source('pipedrive', 'pipedrive__users') }}

),

channel_options as (

    select * from {{ source('pipedrive', 'pipedrive__deal_field_options') }}

),

parsed as (

    select
        -- ids
        _source_system as source_system,
        {{ json_text('record', 'id') }} as crm_deal_id,
        {{ json_text('record', 'owner_id') }} as crm_owner_id,
        {{ json_text('record', 'org_id') }} as org_id,
        {{ json_text('record', 'stage_id') }} as stage_id,
        {{ json_text('record', 'pipeline_id') }} as pipeline_id,
        {{ json_text('record', 'channel') }} as channel_option_id,

        -- attributes
        {{ json_text('record', 'title') }} as deal_name,
        {{ json_text('record', 'status') }} as status,

        -- amounts
        {{ json_text('record', 'value') }} as deal_value,
        {{ json_text('record', 'currency') }} as currency,

        -- timestamps
        {{ json_text('record', 'add_time') }} as add_time,
        {{ json_text('record', 'close_time') }} as close_time,
        {{ json_text('record', 'update_time') }} as update_time
    from deals
    -- Deleted in Pipedrive: gone from the figures, as from the CRM.
    where {{ pipedrive_deal_is_live('record') }}

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
        parsed.org_id as company_id,
        parsed.deal_name,
        {{ json_text('pipelines.record', 'name') }} as pipeline,
        {{ json_text('stages.record', 'name') }} as crm_stage,
        parsed.status,
        {{ json_text('users.record', 'name') }} as owner_name,
        nullif(trim({{ json_text('channel_options.record', 'label') }}), '') as lead_source,
        -- Pipedrive has no empty amount: 0 means none.
        nullif(cast(parsed.deal_value as numeric(38, 6)), 0) as amount,
        upper(parsed.currency) as currency,
        {{ to_utc_timestamp('parsed.add_time') }} as created_at,
        {{ to_utc_timestamp('parsed.close_time') }} as closed_at,
        {{ to_utc_timestamp('parsed.update_time') }} as updated_at
    from parsed
    left join stages
        on parsed.source_system = stages._source_system
        and parsed.stage_id = stages.record_id
    left join pipelines
        on parsed.source_system = pipelines._source_system
        and parsed.pipeline_id = pipelines.record_id
    left join users
        on parsed.source_system = users._source_system
        and parsed.crm_owner_id = users.record_id
    left join channel_options
        on parsed.source_system = channel_options._source_system
        and 'channel:' || parsed.channel_option_id = channel_options.record_id

)

select * from final
