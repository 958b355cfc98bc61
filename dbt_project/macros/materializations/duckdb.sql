{#- Tables, views and incremental models on DuckDB, each replaced in one statement.

    dbt-duckdb's own materializations build an intermediate relation, rename the old one to
    a backup, rename the new one into place and drop the backup, checking foreign keys,
    indexes, grants and docs on the way: about ten metadata round trips, each through a
    freshly built macro context, for every model of every night (a third of a small
    night's build). None of it applies here (no constraints, indexes, grants or persisted
    docs), and DuckDB replaces a relation atomically inside the model's transaction.
    PostgreSQL keeps dbt's materializations. -#}

{% materialization table, adapter="duckdb" %}
    {{ return(replace_relation('table')) }}
{% endmaterialization %}

{% materialization view, adapter="duckdb" %}
    {{ return(replace_relation('view')) }}
{% endmaterialization %}

{#- An incremental model (macros/incremental.sql): a first build or a full refresh replaces
    the table; an incremental night builds the model's rows into a temp table and runs the
    model's strategy (`replace`) from it. -#}
{% materialization incremental, adapter="duckdb" %}
    {%- set existing = load_cached_relation(this) -%}
    {%- if existing is none or existing.is_view or should_full_refresh() -%}
        {{ return(replace_relation('table')) }}
    {%- endif -%}
    {%- set target = this.incorporate(type='table') -%}
    {%- set temp = make_temp_relation(target) -%}
    {%- set strategy = adapter.get_incremental_strategy_macro(
        context, config.get('incremental_strategy') or 'default') -%}
    {%- set replace_rows -%}
        {{ strategy({
            'target_relation': target,
            'temp_relation': temp,
            'unique_key': config.get('unique_key'),
            'dest_columns': adapter.get_columns_in_relation(existing),
            'incremental_predicates': config.get('incremental_predicates'),
        }) }};
        drop table {{ temp }}
    {%- endset -%}
    {{ return(replace_relation(
        'table',
        before='create temporary table ' ~ temp ~ ' as (' ~ compiled_code ~ ')',
        main=replace_rows,
    )) }}
{% endmaterialization %}

{#- The model's hooks around one `main` statement, committed: by default `create or replace`
    of the relation from the model's SQL (a relation of another type in its place is dropped
    first); `before`: a statement to run ahead of it. -#}
{% macro replace_relation(relation_type, before=none, main=none) %}
    {%- set existing = load_cached_relation(this) -%}
    {%- set target = this.incorporate(type=relation_type) -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {%- if existing is not none and existing.type != relation_type %}
        {{ adapter.drop_relation(existing) }}
    {%- endif %}
    {%- if before is not none %}
        {% call statement('before') -%}
            {{ before }}
        {%- endcall %}
    {%- endif %}
    {% call statement('main') -%}
        {%- if main is none %}
        create or replace {{ relation_type }} {{ target }} as (
            {{ compiled_code }}
        )
        {%- else %}
        {{ main }}
        {%- endif %}
    {%- endcall %}

    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {{ adapter.commit() }}
    {{ run_hooks(post_hooks, inside_transaction=False) }}

    {{ return({'relations': [target]}) }}
{% endmacro %}
