with

deal_funnel as (

    select * from {{ ref('fct_deal_funnel') }}

),

funnel_stages as (

    select * from {{ ref('int_funnel_stages') }}

),

cohort_bounds as (

    select
        min(cohort_month) as first_month,
        max(cohort_month) as last_month
    from deal_funnel

),

cohorts as (

    {{ month_series(
        '(select first_month from cohort_bounds)',
        '(select last_month from cohort_bounds)'
    ) }}

),

grid as (

    select
        cohorts.series_month as cohort_month,
        funnel_stages.funnel_stage,
        funnel_stages.stage_order,
        funnel_stages.is_last_stage
    from cohorts
    cross join funnel_stages

),

counts as (

    select
        cohort_month,
        stage_order,
        count(*) as deals_reached,
        sum(case when advanced_to_next then 1 else 0 end) as deals_advanced
    from deal_funnel
    group by cohort_month, stage_order

),

filled as (

    select
        grid.cohort_month,
        grid.funnel_stage,
        grid.stage_order,
        grid.is_last_stage,
        coalesce(counts.deals_reached, 0) as deals_reached,
        coalesce(counts.deals_advanced, 0) as deals_advanced
    from grid
    left join counts
        on grid.cohort_month = counts.cohort_month
        and grid.stage_order = counts.stage_order

),

final as (

    select
        cohort_month,
        funnel_stage,
        stage_order,
        deals_reached,
        deals_advanced,
        case
            when is_last_stage or deals_reached = 0 then null
            else cast(deals_advanced as {{ type_double() }}) / deals_reached
        end as conversion_to_next,
        case
            when first_value(deals_reached) over (
                partition by cohort_month order by stage_order
            ) = 0 then null
            else cast(deals_reached as {{ type_double() }}) / first_value(deals_reached) over (
                partition by cohort_month order by stage_order
            )
        end as conversion_from_top
    from filled

)

select * from final
