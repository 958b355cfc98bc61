{#- Layers land in schemas named as the layer (staging, intermediate, marts, reference),
    not `<target schema>_<layer>`: BI tools and docs name `marts` directly. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
