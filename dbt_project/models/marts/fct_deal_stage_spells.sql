{{ config(
    materialized='incremental',
    incremental_strategy='replace',
    unique_key='deal_id',
    replace_by='changed_deals',
) }}
-- depends_on: {{ ref('int_changed_deals') }}

with

spells as (

    select * from {{ ref('int_deal_stage_spells') }}{{ where_changed_deal() }}

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
