{#- Stage history from successive snapshots of an export that carries none (a Pipedrive
    deals export, a Salesforce opportunities report, a HubSpot export without its
    date-entered columns): the stage a deal is in when it is first seen, and every stage
    seen different from the deal's previous snapshot, each dated as precisely as the
    export allows. The rules and the precision they give: docs/snapshot-history.md.

    relation: one row per deal per snapshot (a ref, a source or a CTE name), with columns
        source_system, deal_id, pipeline, crm_stage, status ('open' | 'won' | 'lost'),
        created_at, closed_at (NULL while open), snapshot_at (when the export was taken,
        load_landing's `snapshot_at`) and _batch_id (should a snapshot list a deal twice,
        the row of the later batch counts);
    stage_changed_at: the column of `relation` holding the export's own time of the deal's
        last stage change (Pipedrive "Deal - Last stage change", Salesforce "Last Stage
        Change Date"), or none when the export has no such column.

    Returns the columns of stg_canonical_csv__deal_stage_changes (source_system, deal_id,
    crm_stage, changed_at, _batch_id), then `seen_at` (the snapshot that showed the stage)
    and `dated_by`, how changed_at was found: 'stage_change_time', 'closed_at',
    'created_at' or 'snapshot'.

    Stage roles come from the reference data: an entry stage maps to the first funnel
    stage, a closing stage to the last one (closed_won) or to lost. -#}
{% macro stage_changes_from_snapshots(relation, stage_changed_at=none) -%}
    with

    snapshot_history__ranked as (

        select
            source_system,
            deal_id,
            pipeline,
            crm_stage,
            status,
            created_at,
            closed_at,
            snapshot_at,
            {% if stage_changed_at -%}
            {{ stage_changed_at }} as stage_changed_at,
            {%- else -%}
            cast(null as timestamp) as stage_changed_at,
            {%- endif %}
            _batch_id,
            -- One row per deal per snapshot is expected; should a snapshot list a deal
            -- twice, the later file's row counts (then the greater stage name).
            row_number() over (
                partition by source_system, deal_id, snapshot_at
                order by _batch_id desc, crm_stage desc
            ) as snapshot_row_rank
        from {{ relation }}

    ),

    snapshot_history__rows as (

        select * from snapshot_history__ranked
        where snapshot_row_rank = 1

    ),

    snapshot_history__source_snapshots as (

        -- Every snapshot of a source, with the source's snapshot before it.
        select
            source_system,
            snapshot_at,
            lag(snapshot_at) over (
                partition by source_system order by snapshot_at
            ) as previous_source_snapshot_at
        from (
            select distinct
                source_system,
                snapshot_at
            from snapshot_history__rows
        ) as distinct_snapshots

    ),

    snapshot_history__funnel_bounds as (

        select
            min(stage_order) as first_stage_order,
            max(stage_order) as last_stage_order
        from {{ ref('stg_reference__funnel_stages') }}

    ),

    snapshot_history__stage_roles as (

        select
            trim(stage_mapping.source_system) as source_system,
            trim(stage_mapping.pipeline) as pipeline,
            trim(stage_mapping.crm_stage) as crm_stage,
            max(
                case
                    when funnel_stages.stage_order = funnel_bounds.first_stage_order then 1
                    else 0
                end
            ) as is_entry_stage,
            max(
                case
                    when lower(trim(stage_mapping.funnel_stage)) = 'lost' then 1
                    when funnel_stages.stage_order = funnel_bounds.last_stage_order then 1
                    else 0
                end
            ) as is_closing_stage
        from {{ ref('stg_reference__stage_mapping') }} as stage_mapping
        cross join snapshot_history__funnel_bounds as funnel_bounds
        left join {{ ref('stg_reference__funnel_stages') }} as funnel_stages
            on lower(trim(stage_mapping.funnel_stage)) = lower(trim(funnel_stages.funnel_stage))
        group by
            trim(stage_mapping.source_system),
            trim(stage_mapping.pipeline),
            trim(stage_mapping.crm_stage)

    ),

    snapshot_history__sightings as (

        select
            snapshot_rows.source_system,
            snapshot_rows.deal_id,
            snapshot_rows.crm_stage,
            snapshot_rows.status in ('won', 'lost') as is_closed,
            snapshot_rows.created_at,
            snapshot_rows.closed_at,
            snapshot_rows.stage_changed_at,
            snapshot_rows.snapshot_at,
            snapshot_rows._batch_id,
            lag(snapshot_rows.crm_stage) over (
                partition by snapshot_rows.source_system, snapshot_rows.deal_id
                order by snapshot_rows.snapshot_at
            ) as previous_stage,
            lag(snapshot_rows.snapshot_at) over (
                partition by snapshot_rows.source_system, snapshot_rows.deal_id
                order by snapshot_rows.snapshot_at
            ) as previous_seen_at,
            source_snapshots.previous_source_snapshot_at,
            coalesce(stage_roles.is_entry_stage, 0) = 1 as is_entry_stage,
            coalesce(stage_roles.is_closing_stage, 0) = 1 as is_closing_stage
        from snapshot_history__rows as snapshot_rows
        inner join snapshot_history__source_snapshots as source_snapshots
            on snapshot_rows.source_system = source_snapshots.source_system
            and snapshot_rows.snapshot_at = source_snapshots.snapshot_at
        left join snapshot_history__stage_roles as stage_roles
            on snapshot_rows.source_system = stage_roles.source_system
            and snapshot_rows.pipeline = stage_roles.pipeline
            and snapshot_rows.crm_stage = stage_roles.crm_stage

    ),

    snapshot_history__dated as (

        -- First sighting: the stage was entered at or after creation, by this snapshot (or
        -- by the close, for a deal already closed).
        select
            *,
            case
                when stage_changed_at > created_at and stage_changed_at <= snapshot_at
                    then 'stage_change_time'
                when
                    is_closing_stage and is_closed
                    and closed_at >= created_at and closed_at <= snapshot_at
                    then 'closed_at'
                when
                    is_entry_stage
                    or created_at > previous_source_snapshot_at
                    or created_at >= snapshot_at
                    then 'created_at'
                when is_closed and closed_at >= created_at and closed_at < snapshot_at
                    then 'closed_at'
                else 'snapshot'
            end as dated_by
        from snapshot_history__sightings
        where previous_seen_at is null

        union all

        -- A stage seen different from the deal's previous snapshot: entered between the two.
        select
            *,
            case
                when stage_changed_at > previous_seen_at and stage_changed_at <= snapshot_at
                    then 'stage_change_time'
                when
                    is_closing_stage and is_closed
                    and closed_at > previous_seen_at and closed_at <= snapshot_at
                    then 'closed_at'
                else 'snapshot'
            end as dated_by
        from snapshot_history__sightings
        where
            previous_seen_at is not null
            and crm_stage <> previous_stage

    ),

    snapshot_history__changes as (

        select
            source_system,
            deal_id,
            crm_stage,
            case dated_by
                when 'stage_change_time' then stage_changed_at
                when 'closed_at' then closed_at
                when 'created_at' then created_at
                else snapshot_at
            end as changed_at,
            _batch_id,
            snapshot_at as seen_at,
            dated_by
        from snapshot_history__dated

    )

    select * from snapshot_history__changes
{%- endmacro %}
