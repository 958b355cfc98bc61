{#- Stage entries from the Opportunity History report. Salesforce writes a history row at
    creation and at every save that changes the stage, amount, probability or close date,
    each with the stage after the save (To Stage). Nightly reports repeat earlier rows:
    each (opportunity, stage, time) counts once. A row that repeats the stage is dropped
    only where it repeats it under any order of rows of the same time (macro
    without_repeated_stages): two changes in one minute keep the marts' one tie rule
    (int_stage_changes__mapped), never the alphabet, so a later re-entry is kept. -#}
{%- set id_15 = "case when length(trim(COL)) = 18 then left(trim(COL), 15)"
    ~ " else nullif(trim(COL), '') end" -%}

with

source as (

    select * from {{ source('salesforce_export', 'salesforce_export__opportunity_history') }}

),

renamed as (

    select
        _source_system as source_system,
        _source_system || ':' || {{ id_15 | replace('COL', 'opportunity_id') }} as deal_id,
        trim(to_stage) as crm_stage,
        {{ to_utc_timestamp("nullif(trim(changed_at), '')") }} as changed_at,
        _batch_id
    from source

),

distinct_rows as (

    select
        source_system,
        deal_id,
        crm_stage,
        changed_at,
        max(_batch_id) as _batch_id
    from renamed
    group by source_system, deal_id, crm_stage, changed_at

),

stage_entries as (

    {{ without_repeated_stages('distinct_rows', ['source_system', 'deal_id']) }}

),

final as (

    select
        source_system,
        deal_id,
        crm_stage,
        changed_at,
        _batch_id
    from stage_entries

)

select * from final
