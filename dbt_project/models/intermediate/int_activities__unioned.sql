{#- Every source's staged activities in the canonical shape (see int_deals__unioned). -#}
{%- set staged = ['stg_canonical_csv__activities'] -%}

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
        activity_id,
        deal_id,
        owner_id,
        activity_type,
        occurred_at
    from {{ model }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

final as (

    select * from unioned

)

select * from final
