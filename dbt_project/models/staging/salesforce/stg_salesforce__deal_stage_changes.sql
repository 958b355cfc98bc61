{#- Stage history from OpportunityHistory. Salesforce writes a row at creation and on every
    change of the stage, amount, close date or probability, each with the then-current
    StageName. A row that repeats the stage is dropped only where it repeats it under any
    order of same-second rows (macro without_repeated_stages): the order of equal times is
    the marts' one rule (int_stage_changes__mapped), so staging decides no tie itself. -#}

with

history as (

    select * from {{ source('salesforce', 'salesforce__opportunity_history') }}

),

opportunities as (

    select * from {{ source('salesforce', 'salesforce__opportunities') }}

),

rows_parsed as (

    select
        -- ids
        _source_system as source_system,
        record_id as history_id,
        {{ json_text('record', 'OpportunityId') }} as crm_deal_id,

        -- attributes
        {{ json_text('record', 'StageName') }} as crm_stage,

        -- timestamps
        {{ to_utc_timestamp(json_text('record', 'CreatedDate')) }} as changed_at
    from history

),

live_opportunities as (

    -- The history row's own IsDeleted is not read: rows of a deleted opportunity leave with
    -- it, and come back with it if it is restored from the recycle bin.
    select
        _source_system as source_system,
        record_id as crm_deal_id
    from opportunities
    where coalesce({{ json_text('record', 'IsDeleted') }}, 'false') <> 'true'

),

live_rows as (

    select rows_parsed.*
    from rows_parsed
    inner join live_opportunities
        on rows_parsed.source_system = live_opportunities.source_system
        and rows_parsed.crm_deal_id = live_opportunities.crm_deal_id

),

stage_entries as (

    {{ without_repeated_stages('live_rows', ['source_system', 'crm_deal_id']) }}

),

final as (

    select distinct
        source_system,
        source_system || ':' || crm_deal_id as deal_id,
        crm_stage,
        changed_at
    from stage_entries

)

select * from final
