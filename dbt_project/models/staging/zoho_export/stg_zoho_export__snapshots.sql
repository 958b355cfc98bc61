{#- Every deal as each snapshot showed it, with its status read from the stage mapping
    (a Zoho export has no status column: the stage says won or lost; macro
    stage_statuses). -#}

with

source as (

    select * from {{ source('zoho_export', 'zoho_export__deals') }}

),

stage_statuses as (

    {{ stage_statuses() }}

),

renamed as (

    select
        source._source_system as source_system,
        source._source_system || ':' || trim(source.record_id) as deal_id,
        trim(source.record_id) as crm_deal_id,
        case
            when nullif(trim(source.deal_owner), '') is not null
                then source._source_system || ':' || trim(source.deal_owner)
        end as owner_id,
        nullif(trim(source.account_name), '') as company_id,
        nullif(trim(source.deal_name), '') as deal_name,
        trim(source.pipeline) as pipeline,
        trim(source.stage) as crm_stage,
        nullif(trim(source.deal_owner), '') as owner_name,
        nullif(trim(source.lead_source), '') as lead_source,
        cast(source.amount as numeric(38, 6)) as amount,
        upper(trim(source.currency)) as currency,
        {{ to_utc_timestamp('source.created_time') }} as created_at,
        {{ to_utc_timestamp('source.closing_date') }} as closing_date,
        {{ to_utc_timestamp('source.modified_time') }} as updated_at,
        {{ to_utc_timestamp('source.snapshot_at') }} as snapshot_at,
        source._batch_id,
        source._source_file,
        source._row_number
    from source

),

statuses as (

    select
        renamed.*,
        stage_statuses.status
    from renamed
    left join stage_statuses
        on renamed.source_system = stage_statuses.source_system
        and renamed.pipeline = stage_statuses.pipeline
        and renamed.crm_stage = stage_statuses.crm_stage

),

final as (

    select
        *,
        -- Closing Date is the expected close while open, the close once won or lost; a
        -- date, so a deal closed the day it was created closes at its creation time.
        case
            when status in ('won', 'lost') then greatest(closing_date, created_at)
        end as closed_at
    from statuses

)

select * from final
