{#- Every opportunity as each opportunities report showed it. Reports show ids of 15
    characters, the API 18 (the same id plus a 3-character checksum): ids are kept at 15
    so that reports and API extracts join. The owner is exported by name: it is the owner
    key. Close Date is a date (the expected one while open): a close time from it is that
    day's midnight, UTC. -#}
{%- set id_15 = "case when length(trim(COL)) = 18 then left(trim(COL), 15)"
    ~ " else nullif(trim(COL), '') end" -%}

with

source as (

    select * from {{ source('salesforce_export', 'salesforce_export__opportunities') }}

),

renamed as (

    select
        -- ids
        _source_system as source_system,
        _source_system || ':' || {{ id_15 | replace('COL', 'opportunity_id') }} as deal_id,
        {{ id_15 | replace('COL', 'opportunity_id') }} as crm_deal_id,
        case
            when nullif(trim(owner), '') is not null then _source_system || ':' || trim(owner)
        end as owner_id,
        coalesce(
            {{ id_15 | replace('COL', 'account_id') }}, nullif(trim(account_name), '')
        ) as company_id,

        -- attributes
        nullif(trim(opportunity_name), '') as deal_name,
        -- Opportunities without a record type follow the org's master sales process.
        coalesce(nullif(trim(record_type), ''), 'Master') as pipeline,
        trim(stage) as crm_stage,
        case
            when lower(trim(won)) in ('1', 'true', 'yes') then 'won'
            when lower(trim(closed)) in ('1', 'true', 'yes') then 'lost'
            else 'open'
        end as status,
        nullif(trim(owner), '') as owner_name,
        nullif(trim(lead_source), '') as lead_source,

        -- amounts
        cast(nullif(trim(amount), '') as numeric(38, 6)) as amount,
        upper(nullif(trim(amount_currency), '')) as currency,

        -- dates and timestamps
        cast(nullif(trim(close_date), '') as date) as close_date,
        {{ to_utc_timestamp("nullif(trim(created_date), '')") }} as created_at,
        {{ to_utc_timestamp("nullif(trim(last_modified_date), '')") }} as updated_at,
        {{ to_utc_timestamp("nullif(trim(last_stage_change_date), '')") }} as stage_changed_at,
        {{ to_utc_timestamp('snapshot_at') }} as snapshot_at,

        -- load metadata
        _batch_id,
        _source_file,
        _row_number

    from source

),

versions as (

    -- An opportunity listed twice in one snapshot (two reports of the same time): the
    -- later line.
    select
        *,
        row_number() over (
            partition by deal_id, snapshot_at order by _batch_id desc, _row_number desc
        ) as version_rank
    from renamed

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
        amount,
        currency,
        close_date,
        created_at,
        -- The close time without history: the last stage change, else the Close Date.
        case
            when status in ('won', 'lost')
                then coalesce(stage_changed_at, cast(close_date as timestamp))
        end as closed_at,
        updated_at,
        stage_changed_at,
        snapshot_at,
        _batch_id,
        _source_file,
        _row_number
    from versions
    where version_rank = 1

)

select * from final
