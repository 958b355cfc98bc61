{#- A deal's customer (METRICS.md: its company, or the deal itself without one), from the
    columns of a staged deal. -#}
{% macro customer_id_of() -%}
    case
        when company_id is not null then source_system || ':' || company_id
        else source_system || ':deal:' || crm_deal_id
    end
{%- endmacro %}
