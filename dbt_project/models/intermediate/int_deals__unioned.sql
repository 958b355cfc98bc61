{#- Every source's staged deals in the canonical shape. A new source adds its staging
    model to this list (and to the three other int_*__unioned models). -#}
{%- set staged = ['stg_canonical_csv__deals'] -%}

with

{% for model in staged %}
{{ model }} as (

    select * from {{ ref(model) }}

),
{% endfor %}

unioned as (

    {% for model in staged %}
    select
        source_system,
        deal_id,
        crm_deal_id,
        owner_id,
        owner_name,
        company_id,
        deal_name,
        pipeline,
        crm_stage,
        status,
        lead_source,
        amount,
        currency,
        created_at,
        closed_at,
        updated_at
    from {{ model }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

final as (

    select * from unioned

)

select * from final
