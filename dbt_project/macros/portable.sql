{#- Small cross-database pieces that dbt's own macros (dbt.date_trunc, dbt.datediff, ...)
    do not cover. Each dispatches, so a new adapter adds its own version. -#}

{#- The run's as-of time as a timestamp literal. Required: no model reads the clock. -#}
{% macro as_of() -%}
    {%- set value = var('as_of', none) -%}
    {%- if value is none and execute -%}
        {{ exceptions.raise_compiler_error("var 'as_of' is required (e.g. --vars '{as_of: \"2026-06-01 00:00:00\"}'): the marts are computed as of the run's data interval end, never the wall clock") }}
    {%- endif -%}
    cast('{{ value }}' as timestamp)
{%- endmacro %}

{#- Text holding an ISO-8601 timestamp, with or without offset, as a UTC timestamp. -#}
{% macro to_utc_timestamp(expr) -%}
    {{ return(adapter.dispatch('to_utc_timestamp', 'crm_funnel')(expr)) }}
{%- endmacro %}
{% macro default__to_utc_timestamp(expr) -%}
    (cast({{ expr }} as timestamp with time zone) at time zone 'UTC')
{%- endmacro %}
{% macro duckdb__to_utc_timestamp(expr) -%}
    {#- The session time zone is UTC (profiles.yml), so the cast to timestamp is UTC wall time. -#}
    cast(cast({{ expr }} as timestamptz) as timestamp)
{%- endmacro %}

{#- First day of the UTC month of a timestamp or date, as a DATE. -#}
{% macro month_of(expr) -%}
    cast({{ dbt.date_trunc('month', expr) }} as date)
{%- endmacro %}

{#- Whole seconds between two timestamps (an integer: sums of it are exact). -#}
{% macro seconds_between(start_expr, end_expr) -%}
    {{ dbt.datediff(start_expr, end_expr, 'second') }}
{%- endmacro %}

{#- Fractional days between two timestamps (seconds / 86400). -#}
{% macro days_between(start_expr, end_expr) -%}
    ({{ seconds_between(start_expr, end_expr) }} / 86400.0)
{%- endmacro %}

{#- Average in days of a column of whole seconds. Summing integers, then dividing once,
    gives the same figure whatever order the rows arrive in; an average of fractional
    days would differ in the last bits from run to run (floating-point addition is not
    associative), and the marts must be identical for the same inputs. -#}
{% macro avg_days(seconds_expr) -%}
    (case
        when count({{ seconds_expr }}) > 0
            then cast(sum({{ seconds_expr }}) as double precision)
            / count({{ seconds_expr }}) / 86400.0
    end)
{%- endmacro %}

{#- Number of days in the month that starts at a DATE. -#}
{% macro days_in_month(month_expr) -%}
    {{ dbt.datediff(month_expr, dbt.dateadd('month', 1, month_expr), 'day') }}
{%- endmacro %}

{#- Continuous percentiles (interpolated, as percentile_cont) of several fractions in one
    sort of the group: an array, the first fraction's at [1]. -#}
{% macro percentiles(expr, fractions) -%}
    percentile_cont(array[{{ fractions | join(', ') }}]) within group (order by {{ expr }})
{%- endmacro %}

{#- A one-column relation `series_date` of every date from start to end inclusive. -#}
{% macro date_series(start_expr, end_expr) -%}
    {{ return(adapter.dispatch('date_series', 'crm_funnel')(start_expr, end_expr)) }}
{%- endmacro %}
{% macro default__date_series(start_expr, end_expr) -%}
    select cast(generate_series(
        cast(cast({{ start_expr }} as date) as timestamp), cast(cast({{ end_expr }} as date) as timestamp), interval '1 day'
    ) as date) as series_date
{%- endmacro %}
{% macro duckdb__date_series(start_expr, end_expr) -%}
    select cast(unnest(generate_series(
        cast(cast({{ start_expr }} as date) as timestamp), cast(cast({{ end_expr }} as date) as timestamp), interval 1 day
    )) as date) as series_date
{%- endmacro %}

{#- A one-column relation `series_month` of every month start from start to end inclusive. -#}
{% macro month_series(start_expr, end_expr) -%}
    {{ return(adapter.dispatch('month_series', 'crm_funnel')(start_expr, end_expr)) }}
{%- endmacro %}
{% macro default__month_series(start_expr, end_expr) -%}
    select cast(generate_series(
        cast(cast({{ start_expr }} as date) as timestamp), cast(cast({{ end_expr }} as date) as timestamp), interval '1 month'
    ) as date) as series_month
{%- endmacro %}
{% macro duckdb__month_series(start_expr, end_expr) -%}
    select cast(unnest(generate_series(
        cast(cast({{ start_expr }} as date) as timestamp), cast(cast({{ end_expr }} as date) as timestamp), interval 1 month
    )) as date) as series_month
{%- endmacro %}

{#- An 8-byte float (dbt.type_float() is a 4-byte float on DuckDB). -#}
{% macro type_double() -%}
    double precision
{%- endmacro %}

{#- A JSON text column's member as text: json_text('record', 'id') or a nested path
    json_text('record', 'data', 'field_key'); a key of digits indexes an array
    (json_text('record', 'results', '0', 'id')). JSON null is SQL NULL. -#}
{% macro json_text(column) -%}
    {{ return(adapter.dispatch('json_text', 'crm_funnel')(column, varargs)) }}
{%- endmacro %}
{% macro default__json_text(column, keys) -%}
    (cast({{ column }} as json) #>> '{ {{- keys | join(',') -}} }')
{%- endmacro %}
{% macro duckdb__json_text(column, keys) -%}
    json_extract_string({{ column }}, '$
    {%- for key in keys -%}
        {{ '[' ~ key ~ ']' if (key | string).isdigit() else '.' ~ key }}
    {%- endfor -%}
    ')
{%- endmacro %}

{#- The members of a JSON object column, as a lateral relation of (member_key,
    member_value) text pairs (JSON null is SQL NULL): `from t cross join
    {{ json_members('t.col') }} as members`. Reads the JSON columns file sources gather
    from a family of headers (extract.warehouse.Wide). -#}
{% macro json_members(column) -%}
    {{ return(adapter.dispatch('json_members', 'crm_funnel')(column)) }}
{%- endmacro %}
{% macro default__json_members(column) -%}
    lateral (
        select
            json_member.key as member_key,
            json_member.value as member_value
        from json_each_text(cast({{ column }} as json)) as json_member
    )
{%- endmacro %}
{% macro duckdb__json_members(column) -%}
    lateral (
        select
            json_member.key as member_key,
            json_member.value ->> '$' as member_value
        from json_each({{ column }}) as json_member
    )
{%- endmacro %}
