{#- Every deal as the latest export that lists it shows it. A deal missing from later
    exports (deleted in Pipedrive, or outside the export's filter) keeps its last seen
    state (docs/exports/pipedrive.md). -#}

with

snapshots as (

    select * from {{ ref('stg_pipedrive_export__deal_snapshots') }}

),

latest as (

    select
        *,
        row_number() over (
            partition by deal_id order by snapshot_at desc, _batch_id desc
        ) as snapshot_rank
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
        snapshot_at as last_seen_at,
        _batch_id,
        _source_file,
        _row_number
    from latest
    where snapshot_rank = 1

)

select * from final
