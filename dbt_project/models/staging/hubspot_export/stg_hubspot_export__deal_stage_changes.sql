{#- Stage history, two ways.
    With the `Date entered "<stage> (<pipeline>)"` columns: one change per non-empty column
    of the deal's (current) pipeline, in every loaded version of the deal. HubSpot keeps
    only the latest entry into each stage; an earlier snapshot still holds an earlier one.
    Deals no export gave a date-entered value for: from successive snapshots
    (stage_changes_from_snapshots, docs/snapshot-history.md). -#}

with

snapshots as (

    select * from {{ ref('stg_hubspot_export__deal_snapshots') }}

),

deals as (

    select * from {{ ref('stg_hubspot_export__deals') }}

),

entries as (

    select
        snapshots.source_system,
        snapshots.deal_id,
        members.member_key,
        {{ to_utc_timestamp('members.member_value') }} as entered_at,
        snapshots._batch_id
    from snapshots
    cross join {{ json_members('snapshots.date_entered') }} as members
    where members.member_value is not null

),

entered as (

    -- The header is `Date entered "` (14 characters), the stage, ` (<pipeline>)"`.
    select
        entries.source_system,
        entries.deal_id,
        substring(
            entries.member_key,
            15,
            length(entries.member_key) - 14 - (length(deals.pipeline) + 4)
        ) as crm_stage,
        entries.entered_at as changed_at,
        entries._batch_id
    from entries
    inner join deals
        on entries.deal_id = deals.deal_id
    where
        lower(substring(entries.member_key, 1, 14)) = 'date entered "'
        and right(entries.member_key, length(deals.pipeline) + 4)
        = ' (' || deals.pipeline || ')"'

),

undated_snapshots as (

    -- One row per deal per snapshot (the later line of a file that lists a deal twice).
    select *
    from (
        select
            snapshots.*,
            row_number() over (
                partition by snapshots.deal_id, snapshots.snapshot_at
                order by snapshots._batch_id desc, snapshots._row_number desc
            ) as snapshot_rank
        from snapshots
        where
            snapshots.deal_id not in (select entered.deal_id from entered)
    ) as ranked
    where snapshot_rank = 1

),

from_snapshots as (

    {{ stage_changes_from_snapshots('undated_snapshots') }}

),

changes as (

    select
        source_system,
        deal_id,
        crm_stage,
        changed_at,
        _batch_id
    from entered

    union all

    select
        source_system,
        deal_id,
        crm_stage,
        changed_at,
        _batch_id
    from from_snapshots

),

final as (

    -- The same entry exported in several files counts once.
    select
        source_system,
        deal_id,
        crm_stage,
        changed_at,
        max(_batch_id) as _batch_id
    from changes
    group by source_system, deal_id, crm_stage, changed_at

)

select * from final
