{#- Every source's staged spend in the canonical shape (see int_deals__unioned). -#}
{%- set staged = ['stg_canonical_csv__spend'] -%}

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
        spend_date,
        channel,
        category,
        currency,
        amount,
        spend_lines
    from {{ model }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

final as (

    select * from unioned

)

select * from final
