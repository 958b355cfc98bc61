with

spells as (

    select * from {{ ref('fct_deal_stage_spells') }}

),

funnel_stages as (

    select * from {{ ref('int_funnel_stages') }}

),

months as (

    select * from {{ ref('int_months') }}

),

completed as (

    select
        {{ month_of('exited_at') }} as month,
        stage_order,
        count(*) as spells_completed,
        {{ avg_days('duration_seconds') }} as avg_days,
        {{ percentiles('duration_days', [0.5, 0.9]) }} as median_and_p90_days
    from spells
    where exited_at is not null and exit_kind <> 'won'
    group by {{ month_of('exited_at') }}, stage_order

),

grid as (

    -- closed_won spells never complete, so the last stage has no row.
    select
        months.month,
        funnel_stages.funnel_stage,
        funnel_stages.stage_order
    from months
    cross join funnel_stages
    where not funnel_stages.is_last_stage

),

final as (

    select
        grid.month,
        grid.funnel_stage,
        grid.stage_order,
        coalesce(completed.spells_completed, 0) as spells_completed,
        cast(completed.avg_days as {{ type_double() }}) as avg_days,
        cast(completed.median_and_p90_days[1] as {{ type_double() }}) as median_days,
        cast(completed.median_and_p90_days[2] as {{ type_double() }}) as p90_days
    from grid
    left join completed
        on grid.month = completed.month
        and grid.stage_order = completed.stage_order

)

select * from final
