{#- An opportunity's stage history comes from the history report when the report has rows
    for it; otherwise it is built from the successive opportunities reports, a change
    dated by Last Stage Change Date when that falls between two reports
    (docs/snapshot-history.md). -#}

with

history as (

    select * from {{ ref('stg_salesforce_export__opportunity_history') }}

),

snapshots as (

    select * from {{ ref('stg_salesforce_export__opportunity_snapshots') }}

),

from_snapshots as (

    {{ stage_changes_from_snapshots('snapshots', stage_changed_at='stage_changed_at') }}

),

with_history as (

    select distinct deal_id from history

),

final as (

    select
        source_system,
        deal_id,
        crm_stage,
        changed_at,
        _batch_id,
        'history_report' as dated_by
    from history

    union all

    select
        from_snapshots.source_system,
        from_snapshots.deal_id,
        from_snapshots.crm_stage,
        from_snapshots.changed_at,
        from_snapshots._batch_id,
        from_snapshots.dated_by
    from from_snapshots
    where
        not exists (
            select 1 from with_history
            where with_history.deal_id = from_snapshots.deal_id
        )

)

select * from final
