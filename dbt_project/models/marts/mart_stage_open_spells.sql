{#- Spells still open at the run's as-of time, with their average age (METRICS.md, "Time
    in stage": open spells are reported separately). -#}

with

spells as (

    select * from {{ ref('fct_deal_stage_spells') }}

),

funnel_stages as (

    select * from {{ ref('int_funnel_stages') }}

),

open_spells as (

    select
        stage_order,
        count(*) as open_spells,
        {{ avg_days(seconds_between('entered_at', as_of())) }} as avg_age_days
    from spells
    where exit_kind = 'open'
    group by stage_order

),

final as (

    select
        funnel_stages.funnel_stage,
        funnel_stages.stage_order,
        coalesce(open_spells.open_spells, 0) as open_spells,
        cast(open_spells.avg_age_days as {{ type_double() }}) as avg_age_days,
        {{ as_of() }} as as_of_at
    from funnel_stages
    left join open_spells on funnel_stages.stage_order = open_spells.stage_order
    where not funnel_stages.is_last_stage

)

select * from final
