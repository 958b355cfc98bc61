with

spells as (

    select * from {{ ref('int_deal_stage_spells') }}

),

final as (

    select
        deal_id,
        spell_number,
        funnel_stage,
        stage_order,
        entered_at,
        exited_at,
        duration_days,
        duration_seconds,
        exit_kind,
        is_current
    from spells

)

select * from final
