{#- Every source's staged deal stage changes in the canonical shape (see int_deals__unioned). -#}
{%- set staged = ['stg_canonical_csv__deal_stage_changes'] -%}

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
        crm_stage,
        changed_at
    from {{ model }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

final as (

    select * from unioned

)

select * from final
