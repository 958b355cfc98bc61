{#- Stage history from the deal flow: the creation entry (`add_time`) enters the first
    stage (the old value of the oldest stage move, or the current stage if it never
    moved), and every `stage_id` change enters its new value. -#}

with

flow as (

    select * from {{ source('pipedrive', 'pipedrive__deal_flow') }}

),

deals as (

    select * from {{ source('pipedrive', 'pipedrive__deals') }}

),

stages as (

    select * from {{ source('pipedrive', 'pipedrive__stages') }}

),

entries as (

    select
        _source_system as source_system,
        merge_key as crm_deal_id,
        cast({{ json_text('record', 'data', 'id') }} as bigint) as change_id,
        {{ json_text('record', 'data', 'field_key') }} as field_key,
        {{ json_text('record', 'data', 'old_value') }} as old_value,
        {{ json_text('record', 'data', 'new_value') }} as new_value,
        {{ to_utc_timestamp(json_text('record', 'data', 'log_time')) }} as changed_at
    from flow

),

live_deals as (

    select
        _source_system as source_system,
        record_id as crm_deal_id,
        {{ json_text('record', 'stage_id') }} as stage_id
    from deals
    where {{ pipedrive_deal_is_live('record') }}

),

live_entries as (

    -- Flows of deleted deals stay in raw; they make no stage change.
    select
        entries.*,
        live_deals.stage_id as current_stage_id
    from entries
    inner join live_deals
        on entries.source_system = live_deals.source_system
        and entries.crm_deal_id = live_deals.crm_deal_id

),

oldest_moves as (

    select
        source_system,
        crm_deal_id,
        old_value as first_stage_id,
        row_number() over (
            partition by source_system, crm_deal_id order by changed_at, change_id
        ) as move_rank
    from live_entries
    where field_key = 'stage_id'

),

stage_entries as (

    select
        live_entries.source_system,
        live_entries.crm_deal_id,
        coalesce(oldest_moves.first_stage_id, live_entries.current_stage_id) as stage_id,
        live_entries.changed_at
    from live_entries
    left join oldest_moves
        on live_entries.source_system = oldest_moves.source_system
        and live_entries.crm_deal_id = oldest_moves.crm_deal_id
        and oldest_moves.move_rank = 1
    where live_entries.field_key = 'add_time'

    union all

    select
        source_system,
        crm_deal_id,
        new_value as stage_id,
        changed_at
    from live_entries
    where field_key = 'stage_id'

),

final as (

    select distinct
        stage_entries.source_system,
        stage_entries.source_system || ':' || stage_entries.crm_deal_id as deal_id,
        {{ json_text('stages.record', 'name') }} as crm_stage,
        stage_entries.changed_at
    from stage_entries
    inner join stages
        on stage_entries.source_system = stages._source_system
        and stage_entries.stage_id = stages.record_id

)

select * from final
