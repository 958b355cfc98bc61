{#- The canonical columns of each staged entity, in the order the intermediate union
    reads them, with their types: every source type's stg_<type>__<entity> provides at
    least these (docs/adding-a-source.md). -#}
{% macro canonical_columns(entity) -%}
    {%- set columns = {
        'deals': [
            ('source_system', 'varchar'), ('deal_id', 'varchar'), ('crm_deal_id', 'varchar'),
            ('owner_id', 'varchar'), ('owner_name', 'varchar'), ('company_id', 'varchar'),
            ('deal_name', 'varchar'), ('pipeline', 'varchar'), ('crm_stage', 'varchar'),
            ('status', 'varchar'), ('lead_source', 'varchar'), ('amount', 'numeric(38, 6)'),
            ('currency', 'varchar'), ('created_at', 'timestamp'), ('closed_at', 'timestamp'),
            ('updated_at', 'timestamp'),
        ],
        'deal_stage_changes': [
            ('source_system', 'varchar'), ('deal_id', 'varchar'), ('crm_stage', 'varchar'),
            ('changed_at', 'timestamp'),
        ],
        'activities': [
            ('source_system', 'varchar'), ('activity_id', 'varchar'), ('deal_id', 'varchar'),
            ('owner_id', 'varchar'), ('activity_type', 'varchar'), ('occurred_at', 'timestamp'),
        ],
        'spend': [
            ('source_system', 'varchar'), ('spend_date', 'date'), ('channel', 'varchar'),
            ('category', 'varchar'), ('currency', 'varchar'), ('amount', 'numeric(38, 6)'),
            ('spend_lines', 'bigint'),
        ],
    } -%}
    {{ return(columns[entity]) }}
{%- endmacro %}

{#- An empty relation of an entity's canonical shape, for a source type that has none of
    it (a CRM holds no spend, a cost report no deals): its model is this one call. -#}
{% macro empty_staged(entity) -%}
    select
        {%- for name, type in canonical_columns(entity) %}
        cast(null as {{ type }}) as {{ name }}{{ "," if not loop.last }}
        {%- endfor %}
    where 1 = 0
{%- endmacro %}
