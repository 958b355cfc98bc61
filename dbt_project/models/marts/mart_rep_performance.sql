with

deals as (

    select * from {{ ref('int_deals__measured') }}

),

months as (

    select * from {{ ref('int_months') }}

),

owners as (

    -- The name on the owner's most recently updated deal (`distinct on` keeps each
    -- owner's first row in this order: one pass, where a window sorts every deal).
    select distinct on (owner_id)
        owner_id,
        owner_name
    from deals
    order by
        owner_id asc,
        case when owner_name is null then 1 else 0 end asc,
        coalesce(updated_at, closed_at, created_at) desc,
        deal_id desc

),

created as (

    select
        cohort_month as month,
        owner_id,
        count(*) as deals_created
    from deals
    group by cohort_month, owner_id

),

closed as (

    select
        closed_month as month,
        owner_id,
        sum(case when status = 'won' then 1 else 0 end) as deals_won,
        sum(case when status = 'lost' then 1 else 0 end) as deals_lost,
        sum(case when status = 'won' then amount_reporting end) as won_amount,
        count(case when status = 'won' then amount_reporting end) as won_deals_with_amount,
        {{
            avg_days("case when status = 'won' then sales_cycle_seconds end")
        }} as avg_sales_cycle_days,
        avg(case when status = 'won' then touches_before_close end) as touches_per_won_deal
    from deals
    where closed_month is not null
    group by closed_month, owner_id

),

grid as (

    select
        months.month,
        owners.owner_id,
        owners.owner_name
    from months
    cross join owners

),

final as (

    select
        grid.month,
        grid.owner_id,
        grid.owner_name,
        coalesce(created.deals_created, 0) as deals_created,
        coalesce(closed.deals_won, 0) as deals_won,
        coalesce(closed.deals_lost, 0) as deals_lost,
        case
            when coalesce(closed.deals_won, 0) + coalesce(closed.deals_lost, 0) > 0
                then
                    cast(closed.deals_won as {{ type_double() }})
                    / (closed.deals_won + closed.deals_lost)
        end as win_rate,
        {{ round_money('coalesce(closed.won_amount, 0)') }} as won_amount,
        {{ money_ratio('closed.won_amount', 'closed.won_deals_with_amount') }} as avg_deal_size,
        cast(closed.avg_sales_cycle_days as {{ type_double() }}) as avg_sales_cycle_days,
        cast(closed.touches_per_won_deal as {{ type_double() }}) as touches_per_won_deal
    from grid
    left join created
        on grid.month = created.month
        and grid.owner_id is not distinct from created.owner_id
    left join closed
        on grid.month = closed.month
        and grid.owner_id is not distinct from closed.owner_id

)

select * from final
