{#- Stage changes collapsed into spells (METRICS.md, "From stage changes to spells"):
    a spell is a maximal run of changes mapping to one funnel stage; a change to `lost`
    ends the spell before it and makes no spell; closed_won spells never exit. Deals whose
    CRM status is closed but whose last spell is still open are reconciled with the
    status (docs/metric-decisions.md). -#}

{{ per_deal_model() }}

with

stage_changes as (

    select * from {{ ref('int_stage_changes__mapped') }}{{ where_changed_deal(marked=true) }}

),

deals as (

    select * from {{ ref('int_deals__unioned') }}{{ where_changed_deal() }}

),

marked as (

    -- One pass over the changes in order: the state before each change, and the deal's
    -- first move to closed_won.
    select
        *,
        case when is_lost then 'lost' else funnel_stage end as state,
        lag(case when is_lost then 'lost' else funnel_stage end) over by_change
            as previous_state,
        -- The whole deal's frame, on the same order: one sort serves both.
        min(case when is_won_stage then change_seq end) over (
            by_change rows between unbounded preceding and unbounded following
        ) as won_change_seq
    from stage_changes
    window by_change as (partition by deal_id order by change_seq)

),

with_next as (

    -- A run of changes to one state is its first change: the run's state, stage and time
    -- are that change's (change_seq orders by time, and one state is one funnel stage).
    -- Changes after the first move to closed_won make no spell: closed_won never exits.
    select
        deal_id,
        -- Runs to lost make no spell (below): a spell's number counts the runs up to it
        -- that do.
        row_number() over by_run
        - count(*) filter (where is_lost) over by_run as spell_number,
        funnel_stage,
        stage_order,
        is_lost,
        is_won_stage,
        changed_at as entered_at,
        lead(changed_at) over by_run as next_entered_at,
        lead(stage_order) over by_run as next_stage_order,
        lead(is_lost) over by_run as next_is_lost
    from marked
    where
        (won_change_seq is null or change_seq <= won_change_seq)
        and (previous_state is null or previous_state != state)
    window by_run as (partition by deal_id order by change_seq)

),

spells as (

    select
        with_next.deal_id,
        with_next.funnel_stage,
        with_next.stage_order,
        with_next.is_won_stage,
        with_next.spell_number,
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
        spells.spell_number,
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
        spell_number,
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

select
    *,
    {{ build_mark() }} as _build_mark
from final
