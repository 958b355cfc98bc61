{#- Views on DuckDB replaced in one statement, for the reasons table_duckdb.sql gives.
    PostgreSQL keeps dbt's materialization. -#}
{% materialization view, adapter="duckdb" %}

    {%- set existing_relation = load_cached_relation(this) -%}
    {%- set target_relation = this.incorporate(type='view') -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {%- if existing_relation is not none and not existing_relation.is_view %}
        {{ adapter.drop_relation(existing_relation) }}
    {%- endif %}

    {% call statement('main') -%}
        create or replace view {{ target_relation }} as (
            {{ compiled_code }}
        )
    {%- endcall %}

    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {{ adapter.commit() }}
    {{ run_hooks(post_hooks, inside_transaction=False) }}

    {{ return({'relations': [target_relation]}) }}

{% endmaterialization %}
