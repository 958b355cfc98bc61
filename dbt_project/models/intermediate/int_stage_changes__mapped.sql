{{ per_deal_model() }}
-- depends_on: {{ ref('int_crm_stages__seen') }}
{# Built after the unmapped-stage check on int_crm_stages__seen has passed. #}

with

stage_changes as (

    select * from {{ ref('int_deal_stage_changes__unioned') }}{{ where_changed_deal() }}

),

deals as (

    select * from {{ ref('int_deals__unioned') }}{{ where_changed_deal() }}

),

stage_mapping as (

    select * from {{ ref('int_stage_mapping') }}

),

mapped as (

    select
        stage_changes.deal_id,
        stage_changes.crm_stage,
        stage_changes.changed_at,
        stage_mapping.funnel_stage,
        stage_mapping.stage_order,
        stage_mapping.is_lost,
        stage_mapping.is_won_stage,
        stage_mapping.probability
    from stage_changes
    inner join deals
        on stage_changes.deal_id = deals.deal_id
    inner join stage_mapping
        on deals.source_system = stage_mapping.source_system
        and deals.pipeline = stage_mapping.pipeline
        and stage_changes.crm_stage = stage_mapping.crm_stage

),

final as (

    select
        *,
        -- Equal timestamps: by funnel stage order, lost last (METRICS.md, spells step 1);
        -- the CRM stage name only makes the order total.
        row_number() over (
            partition by deal_id
            order by
                changed_at,
                case when is_lost then 1 else 0 end,
                stage_order,
                crm_stage
        ) as change_seq
    from mapped

)

select
    *,
    {{ build_mark() }} as _build_mark
from final
