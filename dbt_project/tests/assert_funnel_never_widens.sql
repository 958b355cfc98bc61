-- A cohort never has more deals at a stage than at the stage before it.
with

conversion as (

    select * from {{ ref('mart_funnel_conversion') }}

),

compared as (

    select
        cohort_month,
        stage_order,
        deals_reached,
        lag(deals_reached) over (
            partition by cohort_month order by stage_order
        ) as reached_before
    from conversion

),

final as (

    select *
    from compared
    where deals_reached > reached_before

)

select * from final
