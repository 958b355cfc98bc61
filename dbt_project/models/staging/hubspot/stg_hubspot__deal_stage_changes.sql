{#- Stage history from `propertiesWithHistory.dealstage`: every entry (the oldest is the
    deal's creation) enters the stage it names. The stage is named by its label; a stage
    deleted from its pipeline since (HubSpot no longer lists it, the history keeps its id)
    by its id, so the stage mapping maps it by id and an unmapped one fails the build
    naming the id (docs/setup/hubspot.md). -#}

with

history as (

    select * from {{ source('hubspot', 'hubspot__deal_stage_history') }}

),

deals as (

    select * from {{ source('hubspot', 'hubspot__deals') }}

),

stages as (

    select * from {{ source('hubspot', 'hubspot__pipeline_stages') }}

),

entries as (

    select
        _source_system as source_system,
        merge_key as crm_deal_id,
        {{ json_text('record', 'value') }} as stage_id,
        {{ to_utc_timestamp(json_text('record', 'timestamp')) }} as changed_at
    from history

),

live_deals as (

    select
        _source_system as source_system,
        record_id as crm_deal_id
    from deals
    where coalesce({{ json_text('record', 'archived') }}, 'false') <> 'true'

),

final as (

    -- Histories of archived deals stay in raw; they make no stage change.
    select distinct
        entries.source_system,
        entries.source_system || ':' || entries.crm_deal_id as deal_id,
        coalesce({{ json_text('stages.record', 'label') }}, entries.stage_id) as crm_stage,
        entries.changed_at
    from entries
    inner join live_deals
        on entries.source_system = live_deals.source_system
        and entries.crm_deal_id = live_deals.crm_deal_id
    left join stages
        on entries.source_system = stages._source_system
        and entries.stage_id = stages.record_id

)

select * from final
