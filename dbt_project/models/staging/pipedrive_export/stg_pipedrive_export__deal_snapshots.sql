{#- Every deal as each export showed it. Pipedrive exports owner and organization by name:
    they are the owner and company keys. A won or lost deal keeps its pipeline stage in
    Pipedrive; its close time is Won time or Lost time (Deal closed on when absent). -#}

with

source as (

    select * from {{ source('pipedrive_export', 'pipedrive_export__deals') }}

),

renamed as (

    select
        -- ids
        _source_system as source_system,
        _source_system || ':' || trim(deal_id) as deal_id,
        trim(deal_id) as crm_deal_id,
        case
            when nullif(trim(owner), '') is not null then _source_system || ':' || trim(owner)
        end as owner_id,
        nullif(trim(organization), '') as company_id,

        -- attributes
        nullif(trim(title), '') as deal_name,
        trim(pipeline) as pipeline,
        trim(stage) as crm_stage,
        lower(trim(status)) as status,
        nullif(trim(owner), '') as owner_name,
        nullif(trim(source_channel), '') as lead_source,

        -- amounts (Pipedrive has no empty value: 0 means none)
        nullif(cast(nullif(trim(value), '') as numeric(38, 6)), 0) as amount,
        upper(nullif(trim(currency), '')) as currency,

        -- timestamps
        {{ to_utc_timestamp("nullif(trim(deal_created), '')") }} as created_at,
        {{ to_utc_timestamp("nullif(trim(won_time), '')") }} as won_at,
        {{ to_utc_timestamp("nullif(trim(lost_time), '')") }} as lost_at,
        {{ to_utc_timestamp("nullif(trim(deal_closed_on), '')") }} as deal_closed_at,
        {{ to_utc_timestamp("nullif(trim(update_time), '')") }} as updated_at,
        {{ to_utc_timestamp("nullif(trim(last_stage_change), '')") }} as stage_changed_at,
        {{ to_utc_timestamp('snapshot_at') }} as snapshot_at,

        -- load metadata
        _batch_id,
        _source_file,
        _row_number

    from source

),

versions as (

    -- A deal listed twice in one snapshot (two files of the same time): the later line.
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
        created_at,
        case status
            when 'won' then coalesce(won_at, deal_closed_at)
            when 'lost' then coalesce(lost_at, deal_closed_at)
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
