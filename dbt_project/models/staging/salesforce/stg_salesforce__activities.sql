{#- Tasks (calls, emails) and events (meetings) logged on opportunities: WhatId is the
    opportunity. A task counts once completed (CompletedDateTime), an event at its start
    (ActivityDateTime). -#}

with

tasks as (

    select * from {{ source('salesforce', 'salesforce__tasks') }}

),

events as (

    select * from {{ source('salesforce', 'salesforce__events') }}

),

opportunities as (

    select * from {{ source('salesforce', 'salesforce__opportunities') }}

),

task_activities as (

    select
        _source_system as source_system,
        record_id as crm_activity_id,
        {{ json_text('record', 'WhatId') }} as crm_deal_id,
        {{ json_text('record', 'OwnerId') }} as crm_owner_id,
        {{ json_text('record', 'Type') }} as activity_type,
        {{ json_text('record', 'IsDeleted') }} as is_deleted,
        {{ to_utc_timestamp(json_text('record', 'CompletedDateTime')) }} as occurred_at
    from tasks

),

event_activities as (

    select
        _source_system as source_system,
        record_id as crm_activity_id,
        {{ json_text('record', 'WhatId') }} as crm_deal_id,
        {{ json_text('record', 'OwnerId') }} as crm_owner_id,
        {{ json_text('record', 'Type') }} as activity_type,
        {{ json_text('record', 'IsDeleted') }} as is_deleted,
        {{ to_utc_timestamp(json_text('record', 'ActivityDateTime')) }} as occurred_at
    from events

),

activities as (

    select * from task_activities
    union all
    select * from event_activities

),

live_opportunities as (

    select
        _source_system as source_system,
        record_id as crm_deal_id
    from opportunities
    where coalesce({{ json_text('record', 'IsDeleted') }}, 'false') <> 'true'

),

final as (

    select
        activities.source_system,
        activities.source_system || ':' || activities.crm_activity_id as activity_id,
        activities.source_system || ':' || activities.crm_deal_id as deal_id,
        case
            when activities.crm_owner_id is not null
                then activities.source_system || ':' || activities.crm_owner_id
        end as owner_id,
        lower(activities.activity_type) as activity_type,
        activities.occurred_at
    from activities
    -- WhatId on another object (an account, a campaign) or on a deleted opportunity: no touch.
    inner join live_opportunities
        on activities.source_system = live_opportunities.source_system
        and activities.crm_deal_id = live_opportunities.crm_deal_id
    where
        coalesce(activities.is_deleted, 'false') <> 'true'
        and activities.occurred_at is not null

)

select * from final
