{#- Calls, emails and meetings; the deal is the first associated one. HubSpot drops an
    activity's association when its deal is deleted, so an activity still associated with
    a deal that raw holds as archived (read before the deletion) is left out too. -#}

with

activities as (

    select * from {{ source('hubspot', 'hubspot__activities') }}

),

deals as (

    select * from {{ source('hubspot', 'hubspot__deals') }}

),

parsed as (

    select
        _source_system as source_system,
        record_id as crm_activity_id,
        split_part(record_id, ':', 1) as object_type,
        {{ json_text('record', 'associations', 'deals', 'results', '0', 'id') }}
            as crm_deal_id,
        {{ json_text('record', 'properties', 'hubspot_owner_id') }} as crm_owner_id,
        {{ json_text('record', 'properties', 'hs_timestamp') }} as hs_timestamp,
        {{ json_text('record', 'archived') }} as archived
    from activities

),

archived_deals as (

    select
        _source_system as source_system,
        record_id as crm_deal_id
    from deals
    where {{ json_text('record', 'archived') }} = 'true'

),

final as (

    select
        parsed.source_system,
        parsed.source_system || ':' || parsed.crm_activity_id as activity_id,
        parsed.source_system || ':' || parsed.crm_deal_id as deal_id,
        case
            when parsed.crm_owner_id is not null
                then parsed.source_system || ':' || parsed.crm_owner_id
        end as owner_id,
        case parsed.object_type
            when 'calls' then 'call'
            when 'emails' then 'email'
            when 'meetings' then 'meeting'
        end as activity_type,
        {{ to_utc_timestamp('parsed.hs_timestamp') }} as occurred_at
    from parsed
    where
        parsed.crm_deal_id is not null
        and coalesce(parsed.archived, 'false') <> 'true'
        and not exists (
            select 1 from archived_deals
            where
                archived_deals.source_system = parsed.source_system
                and archived_deals.crm_deal_id = parsed.crm_deal_id
        )

)

select * from final
