{#- Every opportunity as the latest report that lists it shows it. Reports show Created
    Date as a date: the creation time is the history report's first row (Salesforce
    writes one at creation) when it falls on that date. A closed opportunity's close time
    is when it entered its final stage (the history report's last entry, when that is its
    current stage), else its Last Stage Change Date, else its Close Date (a date:
    midnight). -#}

with

snapshots as (

    select * from {{ ref('stg_salesforce_export__opportunity_snapshots') }}

),

history as (

    select * from {{ ref('stg_salesforce_export__opportunity_history') }}

),

latest as (

    select
        *,
        row_number() over (
            partition by deal_id order by snapshot_at desc, _batch_id desc
        ) as snapshot_rank
    from snapshots

),

last_entries as (

    select
        deal_id,
        crm_stage,
        changed_at,
        -- rank, not row_number: report times are minutes, and a deal moved twice in one
        -- minute has two last entries; it closed then if either is its current stage.
        rank() over (partition by deal_id order by changed_at desc) as entry_rank
    from history

),

first_entries as (

    select
        deal_id,
        min(changed_at) as first_changed_at
    from history
    group by deal_id

),

final as (

    select
        latest.source_system,
        latest.deal_id,
        latest.crm_deal_id,
        latest.owner_id,
        latest.company_id,
        latest.deal_name,
        latest.pipeline,
        latest.crm_stage,
        latest.status,
        latest.owner_name,
        latest.lead_source,
        latest.amount,
        latest.currency,
        case
            when
                first_entries.first_changed_at >= latest.created_at
                and first_entries.first_changed_at
                < {{ dbt.dateadd('day', 1, 'latest.created_at') }}
                then first_entries.first_changed_at
            else latest.created_at
        end as created_at,
        case
            when latest.status in ('won', 'lost')
                then coalesce(last_entries.changed_at, latest.closed_at)
        end as closed_at,
        latest.updated_at,
        latest.close_date,
        latest.snapshot_at as last_seen_at,
        latest._batch_id,
        latest._source_file,
        latest._row_number
    from latest
    left join last_entries
        on latest.deal_id = last_entries.deal_id
        and latest.crm_stage = last_entries.crm_stage
        and last_entries.entry_rank = 1
    left join first_entries
        on latest.deal_id = first_entries.deal_id
    where latest.snapshot_rank = 1

)

select * from final
