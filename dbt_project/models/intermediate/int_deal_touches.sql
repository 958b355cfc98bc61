{#- Touches per deal: activities up to the close (up to the as-of time while open). -#}

{{ per_deal_model() }}

with

deals as (

    select * from {{ ref('int_deals__enriched') }}{{ where_changed_deal(marked=true) }}

),

activities as (

    select * from {{ ref('int_activities__unioned') }}{{ where_changed_deal() }}

),

final as (

    select
        deals.deal_id,
        count(activities.activity_id) as touches_before_close
    from deals
    left join activities
        on deals.deal_id = activities.deal_id
        and activities.occurred_at <= coalesce(deals.closed_at, {{ as_of() }})
    group by deals.deal_id

)

select
    *,
    {{ build_mark() }} as _build_mark
from final
