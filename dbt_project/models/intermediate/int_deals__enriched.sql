{{ per_deal_model() }}
-- depends_on: {{ ref('int_crm_stages__seen') }}
{# Built after the unmapped-stage check on int_crm_stages__seen has passed. #}

with

deals as (

    select * from {{ ref('int_deals__unioned') }}{{ where_changed_deal() }}

),

fx_rates as (

    select * from {{ ref('stg_reference__fx_rates') }}

),

channel_mapping as (

    select * from {{ ref('stg_reference__channel_mapping') }}

),

stage_mapping as (

    select * from {{ ref('int_stage_mapping') }}

),

dated as (

    select
        *,
        {{ month_of('created_at') }} as created_month,
        {{ month_of('closed_at') }} as closed_month,
        -- A deal's money converts at the rate of its close month (its creation month while open).
        {{ month_of('coalesce(closed_at, created_at)') }} as fx_month,
        {{ customer_id_of() }} as customer_id
    from deals

),

final as (

    select
        dated.source_system,
        dated.deal_id,
        dated.crm_deal_id,
        dated.owner_id,
        dated.owner_name,
        dated.company_id,
        dated.customer_id,
        dated.deal_name,
        dated.pipeline,
        dated.crm_stage,
        dated.status,
        dated.lead_source,
        coalesce(channel_mapping.channel, 'unattributed') as channel,
        dated.amount,
        dated.currency,
        dated.fx_month,
        case
            when dated.currency = '{{ var("reporting_currency") }}' then cast(1 as numeric(28, 10))
            else fx_rates.rate_to_reporting
        end as fx_rate,
        cast(
            dated.amount * case
                when dated.currency = '{{ var("reporting_currency") }}'
                    then cast(1 as numeric(28, 10))
                else fx_rates.rate_to_reporting
            end
            as numeric(38, 16)
        ) as amount_reporting,
        dated.created_at,
        dated.closed_at,
        dated.updated_at,
        dated.created_month,
        dated.closed_month,
        stage_mapping.funnel_stage as current_funnel_stage,
        stage_mapping.stage_order as current_stage_order,
        stage_mapping.probability as current_stage_probability
    from dated
    left join fx_rates
        on dated.fx_month = fx_rates.month
        and dated.currency = upper(trim(fx_rates.currency))
    left join channel_mapping
        on lower(trim(dated.lead_source)) = lower(trim(channel_mapping.lead_source))
    left join stage_mapping
        on dated.source_system = stage_mapping.source_system
        and dated.pipeline = stage_mapping.pipeline
        and dated.crm_stage = stage_mapping.crm_stage

)

select
    *,
    {{ build_mark() }} as _build_mark
from final
