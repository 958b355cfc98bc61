{#- One row per deal: its latest version (the latest snapshot, then the latest Last
    Modified Date, then the later file and line). -#}

with

snapshots as (

    select * from {{ ref('stg_hubspot_export__deal_snapshots') }}

),

versions as (

    select
        *,
        row_number() over (
            partition by deal_id
            order by
                snapshot_at desc nulls last,
                updated_at desc nulls last,
                _batch_id desc,
                _row_number desc
        ) as version_rank
    from snapshots

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
        closed_at,
        updated_at,
        snapshot_at,
        _batch_id,
        _source_file,
        _row_number
    from versions
    where version_rank = 1

)

select * from final
