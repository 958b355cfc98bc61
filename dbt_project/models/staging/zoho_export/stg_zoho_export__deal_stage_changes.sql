{#- Stage history from successive snapshots (docs/snapshot-history.md). -#}

with

changes as (

    {{ stage_changes_from_snapshots(ref('stg_zoho_export__snapshots')) }}

),

final as (

    select
        source_system,
        deal_id,
        crm_stage,
        changed_at,
        _batch_id
    from changes

)

select * from final
