{#- Tests that fail the build with a message naming what is wrong, not only a count.
    They run query-time checks when executed (dbt compiles each node just before it runs,
    so the model under test exists) and raise with the offending values; the SQL they
    return selects the same rows, so `dbt test` reports the count too. -#}

{% test all_crm_stages_mapped(model, column_name) %}
    {%- set failing -%}
        select source_system, pipeline, crm_stage, deals_now_in_stage, changes_to_stage
        from {{ model }}
        where {{ column_name }} is null
        order by source_system, pipeline, crm_stage
    {%- endset -%}
    {%- if execute -%}
        {%- set rows = run_query(failing).rows -%}
        {%- if rows | length > 0 -%}
            {%- set lines = [] -%}
            {%- for row in rows -%}
                {%- do lines.append("  source_system=" ~ row[0] ~ ", pipeline=" ~ row[1] ~ ", crm_stage=" ~ row[2] ~ " (" ~ row[3] ~ " deals now, " ~ row[4] ~ " stage changes)") -%}
            {%- endfor -%}
            {{ exceptions.raise_compiler_error("Unmapped CRM stage(s): add them to the stage_mapping reference data (funnel stage or 'lost'):\n" ~ (lines | join("\n"))) }}
        {%- endif -%}
    {%- endif -%}
    {{ failing }}
{% endtest %}

{% test fx_rate_present(model, column_name, amount_column, currency_column, month_column) %}
    {%- set failing -%}
        select {{ currency_column }} as currency, {{ month_column }} as month, count(*) as rows_without_rate
        from {{ model }}
        where {{ amount_column }} is not null and {{ column_name }} is null
        group by {{ currency_column }}, {{ month_column }}
        order by {{ currency_column }}, {{ month_column }}
    {%- endset -%}
    {%- if execute -%}
        {%- set rows = run_query(failing).rows -%}
        {%- if rows | length > 0 -%}
            {%- set lines = [] -%}
            {%- for row in rows -%}
                {%- do lines.append("  currency=" ~ row[0] ~ ", month=" ~ row[1] ~ " (" ~ row[2] ~ " rows)") -%}
            {%- endfor -%}
            {{ exceptions.raise_compiler_error("Missing FX rate(s) to " ~ var('reporting_currency') ~ " in " ~ model.identifier ~ ": add them to the fx_rates reference data:\n" ~ (lines | join("\n"))) }}
        {%- endif -%}
    {%- endif -%}
    {{ failing }}
{% endtest %}

{% test mapped_to_funnel(model, column_name) %}
    {#- Every stage_mapping row names a funnel stage of funnel_stages, or `lost`. -#}
    select * from {{ model }}
    where {{ column_name }} is null and not is_lost
{% endtest %}

{#- A key column: no null, no value twice (dbt's unique and not_null in one query, one
    node instead of two on every night). -#}
{% test primary_key(model, column_name) %}
    select {{ column_name }}, count(*) as occurrences
    from {{ model }}
    group by {{ column_name }}
    having count(*) > 1 or {{ column_name }} is null
{% endtest %}

{% test unique_combination(model, combination) %}
    select {{ combination | join(', ') }}, count(*) as occurrences
    from {{ model }}
    group by {{ combination | join(', ') }}
    having count(*) > 1
{% endtest %}

{% test between(model, column_name, min_value, max_value) %}
    select * from {{ model }}
    where {{ column_name }} < {{ min_value }} or {{ column_name }} > {{ max_value }}
{% endtest %}
