{#- Open deals at the end of every day by funnel stage. A deal in a segment [start, end)
    is open at the end of day d when start < d + 1 day <= end, i.e. on the days from
    date(start) to date(end) - 1: counted with +1 on date(start) and -1 on date(end), then
    a running sum per stage. -#}

with

segments as (

    select * from {{ ref('int_deal_stage_segments') }}

),

deals as (

    select * from {{ ref('int_deals__enriched') }}

),

funnel_stages as (

    select * from {{ ref('int_funnel_stages') }}

),

days as (

    {{ date_series('(select min(created_at) from deals)', as_of()) }}

),

deltas as (

    select
        cast(segment_start as date) as delta_date,
        stage_order,
        1 as open_deals,
        coalesce(amount_reporting, 0) as open_amount,
        coalesce(amount_reporting * probability, 0) as weighted_amount
    from segments

    union all

    select
        cast(segment_end as date) as delta_date,
        stage_order,
        -1 as open_deals,
        -coalesce(amount_reporting, 0) as open_amount,
        -coalesce(amount_reporting * probability, 0) as weighted_amount
    from segments
    where segment_end is not null

),

daily_deltas as (

    select
        delta_date,
        stage_order,
        sum(open_deals) as open_deals,
        sum(open_amount) as open_amount,
        sum(weighted_amount) as weighted_amount
    from deltas
    group by delta_date, stage_order

),

grid as (

    select
        days.series_date as snapshot_date,
        funnel_stages.funnel_stage,
        funnel_stages.stage_order
    from days
    cross join funnel_stages

),

running as (

    select
        grid.snapshot_date,
        grid.funnel_stage,
        grid.stage_order,
        sum(coalesce(daily_deltas.open_deals, 0)) over stage_days as open_deals,
        sum(coalesce(daily_deltas.open_amount, 0)) over stage_days as open_amount,
        sum(coalesce(daily_deltas.weighted_amount, 0)) over stage_days as weighted_amount
    from grid
    left join daily_deltas
        on grid.snapshot_date = daily_deltas.delta_date
        and grid.stage_order = daily_deltas.stage_order
    window stage_days as (
        partition by grid.stage_order
        order by grid.snapshot_date
        rows between unbounded preceding and current row
    )

),

final as (

    select
        snapshot_date,
        funnel_stage,
        stage_order,
        open_deals,
        {{ round_money('open_amount') }} as open_amount,
        {{ round_money('weighted_amount') }} as weighted_amount
    from running

)

select * from final
