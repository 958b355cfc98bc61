{#- Every loaded version of every deal, one per export file, with the status HubSpot does
    not export: the funnel stage the mapping seed gives the deal's stage decides it (the
    last funnel stage is won, `lost` is lost, any other mapped stage is open). Close Date
    counts only on a closed deal: on an open one HubSpot holds the expected close date. -#}

with

source as (

    select * from {{ source('hubspot_export', 'hubspot_export__deals') }}

),

stage_statuses as (

    {{ stage_statuses() }}

),

renamed as (

    select
        -- ids
        _source_system as source_system,
        _source_system || ':' || trim(record_id) as deal_id,
        trim(record_id) as crm_deal_id,
        case
            when nullif(trim(deal_owner), '') is not null
                then _source_system || ':' || trim(deal_owner)
        end as owner_id,
        coalesce(
            nullif(trim(primary_company_id), ''),
            nullif(trim(split_part(associated_company_ids, ';', 1)), '')
        ) as company_id,

        -- attributes
        nullif(trim(deal_name), '') as deal_name,
        trim(pipeline) as pipeline,
        trim(deal_stage) as crm_stage,
        nullif(trim(deal_owner), '') as owner_name,
        nullif(trim(lead_source), '') as lead_source,
        nullif(trim(deal_type), '') as deal_type,
        date_entered,

        -- amounts
        cast(nullif(trim(amount), '') as numeric(38, 6)) as amount,
        upper(nullif(trim(currency), '')) as currency,

        -- timestamps
        {{ to_utc_timestamp("nullif(trim(create_date), '')") }} as created_at,
        {{ to_utc_timestamp("nullif(trim(close_date), '')") }} as close_date_at,
        {{ to_utc_timestamp("nullif(trim(last_modified_date), '')") }} as updated_at,
        {{ to_utc_timestamp("nullif(trim(snapshot_at), '')") }} as snapshot_at,

        -- load metadata
        _batch_id,
        _source_file,
        _row_number

    from source

),

mapped as (

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
        source_system,
        deal_id,
        crm_deal_id,
        owner_id,
        company_id,
        deal_name,
        pipeline,
        crm_stage,
        status,
        owner_name,
        lead_source,
        deal_type,
        amount,
        currency,
        created_at,
        case when status in ('won', 'lost') then close_date_at end as closed_at,
        updated_at,
        snapshot_at,
        date_entered,
        _batch_id,
        _source_file,
        _row_number
    from mapped

)

select * from final
