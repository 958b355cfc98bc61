{#- Stage changes collapsed into spells (METRICS.md, "From stage changes to spells"):
    a spell is a maximal run of changes mapping to one funnel stage; a change to `lost`
    ends the spell before it and makes no spell; closed_won spells never exit. Deals whose
    CRM status is closed but whose last spell is still open are reconciled with the
    status (docs/metric-decisions.md). -#}

with

stage_changes as (

    select * from {{ ref('int_stage_changes__mapped') }}

),

deals as (

    select * from {{ ref('int_deals__unioned') }}

),

first_win as (

    select
        deal_id,
        min(change_seq) as won_change_seq
    from stage_changes
    where is_won_stage
    group by deal_id

),

until_won as (

    -- Changes after the first move to closed_won make no spell: closed_won never exits.
    select stage_changes.*
    from stage_changes
    left join first_win on stage_changes.deal_id = first_win.deal_id
    where
        first_win.won_change_seq is null
        or stage_changes.change_seq <= first_win.won_change_seq

),

keyed as (

    select
        *,
        case when is_lost then 'lost' else funnel_stage end as state
    from until_won

),

run_starts as (

    select
        *,
        case
            when lag(state) over (partition by deal_id order by change_seq) = state then 0
            else 1
        end as starts_run
    from keyed

),

runs as (

    select
        *,
        sum(starts_run) over (
            partition by deal_id
            order by change_seq rows between unbounded preceding and current row
        ) as run_number
    from run_starts

),

collapsed as (

    select
        deal_id,
        run_number,
        max(state) as state,
        max(funnel_stage) as funnel_stage,
        max(stage_order) as stage_order,
        {{ dbt.bool_or('is_lost') }} as is_lost,
        {{ dbt.bool_or('is_won_stage') }} as is_won_stage,
        min(changed_at) as entered_at
    from runs
    group by deal_id, run_number

),

with_next as (

    select
        *,
        lead(entered_at) over (partition by deal_id order by run_number) as next_entered_at,
        lead(stage_order) over (partition by deal_id order by run_number) as next_stage_order,
        lead(is_lost) over (partition by deal_id order by run_number) as next_is_lost
    from collapsed

),

spells as (

    select
        with_next.deal_id,
        with_next.funnel_stage,
        with_next.stage_order,
        with_next.is_won_stage,
        with_next.run_number,
        with_next.entered_at,
        case when with_next.is_won_stage then null else with_next.next_entered_at end as exited_at,
        case
            when with_next.is_won_stage then 'won'
            when with_next.next_entered_at is null then 'open'
            when with_next.next_is_lost then 'lost'
            when with_next.next_stage_order > with_next.stage_order then 'advanced'
            else 'regressed'
        end as exit_kind
    from with_next
    where not with_next.is_lost

),

reconciled as (

    select
        spells.deal_id,
        spells.run_number,
        spells.funnel_stage,
        spells.stage_order,
        spells.entered_at,
        case
            when spells.exit_kind = 'open' and deals.status in ('won', 'lost')
                then case
                    when deals.closed_at > spells.entered_at then deals.closed_at
                    else spells.entered_at
                end
            else spells.exited_at
        end as exited_at,
        case
            when spells.exit_kind = 'open' and deals.status = 'lost' then 'lost'
            when spells.exit_kind = 'open' and deals.status = 'won' then 'advanced'
            else spells.exit_kind
        end as exit_kind
    from spells
    inner join deals on spells.deal_id = deals.deal_id

),

final as (

    select
        deal_id,
        row_number() over (partition by deal_id order by run_number) as spell_number,
        funnel_stage,
        stage_order,
        entered_at,
        exited_at,
        case
            when exited_at is not null then {{ days_between('entered_at', 'exited_at') }}
        end as duration_days,
        case
            when exited_at is not null then {{ seconds_between('entered_at', 'exited_at') }}
        end as duration_seconds,
        exit_kind,
        exited_at is null as is_current
    from reconciled

)

select * from final
