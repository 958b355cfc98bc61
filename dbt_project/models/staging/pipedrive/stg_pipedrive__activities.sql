with

activities as (

    select * from {{ source('pipedrive', 'pipedrive__activities') }}

),

parsed as (

    select
        _source_system as source_system,
        record_id as crm_activity_id,
        {{ json_text('record', 'deal_id') }} as crm_deal_id,
        {{ json_text('record', 'owner_id') }} as crm_owner_id,
        {{ json_text('record', 'type') }} as activity_type,
        {{ json_text('record', 'due_date') }} as due_date,
        {{ json_text('record', 'due_time') }} as due_time,
        {{ json_text('record', 'is_deleted') }} as is_deleted
    from activities

),

final as (

    select
        source_system,
        source_system || ':' || crm_activity_id as activity_id,
        source_system || ':' || crm_deal_id as deal_id,
        case
            when crm_owner_id is not null then source_system || ':' || crm_owner_id
        end as owner_id,
        lower(activity_type) as activity_type,
        {{ to_utc_timestamp("due_date || 'T' || coalesce(due_time, '00:00:00') || 'Z'") }}
            as occurred_at
    from parsed
    where crm_deal_id is not null and coalesce(is_deleted, 'false') <> 'true'

)

select * from final
