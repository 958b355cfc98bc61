{#- Money in the marts: rounded half away from zero to cents, exactly.

    Amounts are decimals end to end. DuckDB divides decimals in floating point, which
    turns an exact half cent (1000.005) into 1000.00499.. and rounds it down; so averages
    of money go through money_ratio, which divides in integers on DuckDB. -#}

{% macro round_money(expr) -%}
    {{ return(adapter.dispatch('round_money', 'crm_funnel')(expr)) }}
{%- endmacro %}
{% macro default__round_money(expr) -%}
    cast(round(cast({{ expr }} as numeric), 2) as numeric(38, 2))
{%- endmacro %}
{% macro duckdb__round_money(expr) -%}
    cast(round({{ expr }}, 2) as decimal(38, 2))
{%- endmacro %}

{#- numerator / denominator rounded to cents; NULL when the denominator is 0 or NULL.
    The numerator is money (a decimal), the denominator a count. -#}
{% macro money_ratio(numerator, denominator) -%}
    {{ return(adapter.dispatch('money_ratio', 'crm_funnel')(numerator, denominator)) }}
{%- endmacro %}
{% macro default__money_ratio(numerator, denominator) -%}
    (case when {{ denominator }} = 0 then null
          else cast(round(cast({{ numerator }} as numeric) / {{ denominator }}, 2) as numeric(38, 2))
     end)
{%- endmacro %}
{% macro duckdb__money_ratio(numerator, denominator) -%}
    {#- n = |numerator| x 10^16 as an integer (via its exact decimal text), then
        cents = floor((floor(2 x n x 100 / (d x 10^16)) + 1) / 2), i.e. half up on |x|. -#}
    (case when {{ denominator }} = 0 or {{ numerator }} is null then null
          else cast(sign({{ numerator }}) * cast(
              (
                  (cast(replace(cast(cast(abs({{ numerator }}) as decimal(38, 16)) as varchar), '.', '') as hugeint)
                   * 200
                   // (cast({{ denominator }} as hugeint) * cast(10000000000000000 as hugeint)))
                  + 1
              ) // 2
          as decimal(38, 2)) * cast(0.01 as decimal(3, 2)) as decimal(38, 2))
     end)
{%- endmacro %}
