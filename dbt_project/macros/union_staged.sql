{#- The canonical entity of every enabled source type, unioned.

    `var('staged_source_types')` (dbt_project.yml) lists the source types that have a
    staging folder; each provides `stg_<type>__<entity>` with the canonical columns
    (macro canonical_columns), so adding a source type adds one word to that list and no
    SQL here. -#}
{% macro union_staged(entity) -%}
    {%- for source_type in var('staged_source_types') %}
    select
        {%- for column, _ in canonical_columns(entity) %}
        {{ column }}{{ "," if not loop.last }}
        {%- endfor %}
    from {{ ref('stg_' ~ source_type ~ '__' ~ entity) }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
{%- endmacro %}
