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
    node instead of two on every night). The one check of row_checks below. -#}
{% test primary_key(model, column_name) %}
    {{ test_row_checks(model, primary_key=[column_name]) }}
{% endtest %}

{% test unique_combination(model, combination) %}
    {{ test_row_checks(model, unique=combination) }}
{% endtest %}

{#- Every check of a model's own rows, as one query and one node: a model with several
    checks would otherwise run one node each (about 20 ms of dbt's own work per node on
    every night, whatever the data). Each failing row names its check and the offending
    value, with how many rows hold it:
      primary_key: [columns]        no NULL in them, no combination twice
      unique: [columns or exprs]    no combination twice (NULLs allowed)
      not_null: [columns]
      accepted_values: {column: [values]}   NULL allowed, as dbt's accepted_values
      between: {column: [min, max]}         NULL allowed -#}
{% test row_checks(model, primary_key=none, unique=none, not_null=none, accepted_values=none, between=none) %}
    {%- set checks = [] -%}
    {%- for name, columns in [('primary_key', primary_key), ('unique', unique)] if columns -%}
        {%- set columns = [columns] if columns is string else columns -%}
        {%- set value -%}
            {%- for column in columns -%}
                coalesce(cast({{ column }} as varchar), 'NULL'){{ " || ', ' || " if not loop.last }}
            {%- endfor -%}
        {%- endset -%}
        {%- set nulls = " or " ~ (columns | join(" is null or ")) ~ " is null" if name == 'primary_key' else "" -%}
        {%- do checks.append(
            "select '" ~ name ~ "(" ~ (columns | join(", ") | replace("'", "''")) ~ ")' as failed_check, "
            ~ value ~ " as failed_value, count(*) as occurrences from " ~ model
            ~ " group by " ~ (columns | join(", ")) ~ " having count(*) > 1" ~ nulls) -%}
    {%- endfor -%}
    {%- for column in not_null or [] -%}
        {%- do checks.append(
            "select 'not_null(" ~ column ~ ")' as failed_check, cast(null as varchar) as failed_value,"
            ~ " count(*) as occurrences from " ~ model ~ " where " ~ column ~ " is null having count(*) > 0") -%}
    {%- endfor -%}
    {%- for column, values in (accepted_values or {}).items() -%}
        {%- do checks.append(
            "select 'accepted_values(" ~ column ~ ")' as failed_check, cast(" ~ column ~ " as varchar) as failed_value,"
            ~ " count(*) as occurrences from " ~ model ~ " where " ~ column ~ " not in ('"
            ~ (values | map('replace', "'", "''") | join("', '")) ~ "') group by " ~ column) -%}
    {%- endfor -%}
    {%- for column, bounds in (between or {}).items() -%}
        {%- do checks.append(
            "select 'between(" ~ column ~ ", " ~ bounds[0] ~ ", " ~ bounds[1] ~ ")' as failed_check,"
            ~ " cast(" ~ column ~ " as varchar) as failed_value, count(*) as occurrences from " ~ model
            ~ " where " ~ column ~ " < " ~ bounds[0] ~ " or " ~ column ~ " > " ~ bounds[1] ~ " group by " ~ column) -%}
    {%- endfor -%}
    {%- if not checks -%}
        {{ exceptions.raise_compiler_error("row_checks on " ~ model ~ ": no check given") }}
    {%- endif -%}
    {{ checks | join("\nunion all\n") }}
{% endtest %}
