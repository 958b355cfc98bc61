{#- Incremental models on DuckDB (macros/incremental.sql), the same lean way as tables
    (table_duckdb.sql): a first build or a full refresh replaces the table in one
    statement; an incremental night builds the model's rows into a temp table and runs the
    model's strategy (`replace`) from it, in the model's transaction. PostgreSQL keeps
    dbt's materialization. -#}
{% materialization incremental, adapter="duckdb" %}

    {%- set existing_relation = load_cached_relation(this) -%}
    {%- set target_relation = this.incorporate(type='table') -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {%- if existing_relation is none or existing_relation.is_view or should_full_refresh() %}
        {%- if existing_relation is not none and existing_relation.is_view %}
            {{ adapter.drop_relation(existing_relation) }}
        {%- endif %}
        {% call statement('main') -%}
            create or replace table {{ target_relation }} as (
                {{ compiled_code }}
            )
        {%- endcall %}
    {%- else %}
        {%- set temp_relation = make_temp_relation(target_relation) -%}
        {% call statement('build_temp') -%}
            create temporary table {{ temp_relation }} as (
                {{ compiled_code }}
            )
        {%- endcall %}
        {%- set strategy = config.get('incremental_strategy') or 'default' -%}
        {%- set strategy_sql = adapter.get_incremental_strategy_macro(context, strategy) -%}
        {% call statement('main') -%}
            {{ strategy_sql({
                'target_relation': target_relation,
                'temp_relation': temp_relation,
                'unique_key': config.get('unique_key'),
                'dest_columns': adapter.get_columns_in_relation(existing_relation),
                'incremental_predicates': config.get('incremental_predicates'),
            }) }};
            drop table {{ temp_relation }}
        {%- endcall %}
    {%- endif %}

    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {{ adapter.commit() }}
    {{ run_hooks(post_hooks, inside_transaction=False) }}

    {{ return({'relations': [target_relation]}) }}

{% endmaterialization %}
