{#- Tables on DuckDB, replaced in one statement.

    dbt-duckdb's own table materialization builds an intermediate table, renames the old
    one to a backup, renames the new one into place, then drops the backup, checking
    foreign keys, indexes, grants and docs on the way: about ten metadata round trips,
    each through a freshly built macro context, for every table of every night. None of
    it applies here (no constraints, indexes, grants or persisted docs), and DuckDB
    replaces a table atomically inside the model's transaction: one statement does it.
    PostgreSQL keeps dbt's materialization. -#}
{% materialization table, adapter="duckdb" %}

    {%- set existing_relation = load_cached_relation(this) -%}
    {%- set target_relation = this.incorporate(type='table') -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {%- if existing_relation is not none and not existing_relation.is_table %}
        {{ adapter.drop_relation(existing_relation) }}
    {%- endif %}

    {% call statement('main') -%}
        create or replace table {{ target_relation }} as (
            {{ compiled_code }}
        )
    {%- endcall %}

    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {{ adapter.commit() }}
    {{ run_hooks(post_hooks, inside_transaction=False) }}

    {{ return({'relations': [target_relation]}) }}

{% endmaterialization %}
