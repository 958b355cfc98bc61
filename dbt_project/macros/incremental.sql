{#- Incremental nights (docs/incremental.md).

    A night is incremental when night/build_state.py finds that the raw layer only grew
    since the last build that passed (and nothing else it reads changed): it then passes
    `changed_since_batch` (the last build's highest raw batch) and `previous_as_of`, and
    no `--full-refresh`. Every other night is a full refresh.

    On an incremental night:
    - a staging model rebuilds the keys that have a raw row newer than
      `changed_since_batch` (from all of those keys' raw rows) and replaces them (strategy
      `replace` below, by its unique key); it logs the deals of the rows it removed and
      wrote in `meta.changed_deals_log`;
    - int_changed_deals turns that log into the deals whose downstream rows may change;
    - every per-deal model rebuilds exactly those deals and replaces their rows;
    - the marts that aggregate over all deals are rebuilt in full from those tables;
    - the data tests of the models replaced in part check the rows rebuilt tonight, and
      those of the staging unions the deals staged tonight (get_where_subquery below).
    Its marts equal a full refresh's: tests/test_incremental_night.py proves it. -#}

{#- True on an incremental night: the build was given `changed_since_batch`
    (night/build_state.py). -#}
{% macro incremental_build() -%}
    {{ return(var('changed_since_batch', none) is not none) }}
{%- endmacro %}

{#- True while an incremental model is being replaced in part (see above). -#}
{% macro incremental_night() -%}
    {#- A unit test renders the model without a relation (`this`): never incremental. -#}
    {%- if this is none or not is_incremental() -%}
        {{ return(false) }}
    {%- endif -%}
    {%- if not incremental_build() -%}
        {{ exceptions.raise_compiler_error("model " ~ this ~ " exists and the build is not a full refresh, but var 'changed_since_batch' is missing: pass it (night/build_state.py does) or --full-refresh") }}
    {%- endif -%}
    {{ return(true) }}
{%- endmacro %}

{#- The log of deals whose staged rows changed tonight (written by strategy `replace`). -#}
{% macro changed_deals_log() -%}
    meta.changed_deals_log
{%- endmacro %}

{#- on-run-start: an empty log for an incremental night (other commands: nothing). -#}
{% macro reset_changed_deals_log() -%}
    {%- if incremental_build() -%}
    create schema if not exists meta;
    create table if not exists {{ changed_deals_log() }} (deal_id varchar);
    delete from {{ changed_deals_log() }};
    {%- endif -%}
{%- endmacro %}

{#- A per-deal model's config (called first in its SQL): an incremental table replaced by
    the deals of int_changed_deals, which it reads through where_changed_deal (hence the
    dependency, declared here at parse time). Its data tests check tonight's deals;
    publish replaces the same deals' rows of a mart (night/transform.per_deal_marts).
    `build_mark`: its rows carry `_build_mark` (build_mark() below; the model selects it),
    as every per-deal table the others read does; false for fct_deal_funnel, a mart whose
    columns are BI's. -#}
{% macro per_deal_model(build_mark=true) -%}
{{ config(
    materialized='incremental',
    incremental_strategy='replace',
    unique_key='deal_id',
    replace_by='changed_deals',
    build_mark=build_mark,
) }}
-- depends_on: {{ ref('int_changed_deals') }}
{%- endmacro %}

{#- `_build_mark` of the rows this build writes: 0 on a full refresh, the first batch after
    the last build's (changed_since_batch + 1) on an incremental night. Bookkeeping, not
    data: a full refresh of the same data writes the same rows with other marks.

    A per-deal model replaces every row of each changed deal, so after it ran tonight the
    changed deals' rows are all marked tonight; marks only grow (the next night's mark
    is above tonight's once a batch arrived), so tonight's rows sit in the row groups
    written last, and a filter on the mark lets DuckDB skip the others by their min/max
    instead of looking up every row's deal. The filters below keep the deal condition
    too: the mark only narrows what is read, so a mark shared with an earlier night (one
    that brought no batch) reads more rows, never other results. -#}
{% macro build_mark() -%}
    {%- if incremental_build() -%}
    cast({{ var('changed_since_batch') | int + 1 }} as bigint)
    {%- else -%}
    cast(0 as bigint)
    {%- endif -%}
{%- endmacro %}

{#- The deals a per-deal model rebuilds tonight, as a relation (int_changed_deals). Outside
    models' refs (a data test's filter), named as generate_schema_name places it. -#}
{% macro changed_deals_relation() -%}
    {{ generate_schema_name('intermediate', none) }}.int_changed_deals
{%- endmacro %}

{#- The predicates of tonight's deals: those per-deal models rebuild (int_changed_deals),
    and those the staging models wrote or removed rows of (their log). -#}
{% macro in_changed_deals(column='deal_id') -%}
    {{ column }} in (select deal_id from {{ changed_deals_relation() }})
{%- endmacro %}
{% macro in_staged_deals(column='deal_id') -%}
    {{ column }} in (select deal_id from {{ changed_deals_log() }})
{%- endmacro %}

{#- `where <column> in (tonight's changed deals)` on an incremental night, else nothing: the
    input filter of a per-deal model (per_deal_model() declares its int_changed_deals).
    `marked`: the input is a per-deal table with `_build_mark` (replaced earlier
    tonight): its changed deals' rows are those marked tonight (build_mark). -#}
{% macro where_changed_deal(column='deal_id', marked=false) -%}
    {%- if incremental_night() %}
    where {% if marked %}{{ marked_tonight() }} and {% endif %}{{ in_changed_deals(column) }}
    {%- endif -%}
{%- endmacro %}

{#- The rows a per-deal table got tonight (build_mark). -#}
{% macro marked_tonight() -%}
    _build_mark = {{ build_mark() }}
{%- endmacro %}

{#- On an incremental night, only the deals staged tonight (their log), for a table that
    checks what tonight brought (int_crm_stages__seen); every row otherwise. -#}
{% macro where_staged_deal(column='deal_id') -%}
    {%- if incremental_build() %}
    where {{ in_staged_deals(column) }}
    {%- endif -%}
{%- endmacro %}

{#- The raw rows of the batches loaded since the last build on an incremental night; all
    rows otherwise. Enough for a staging model whose row of a key is the key's row in its
    newest batch (ranked by `_batch_id desc` first): a key with a row in tonight's batches
    has its newest row among them, and raw only grew since the last build (a night that
    replaced rows is a full refresh: night/build_state.py). Unlike raw_rows_of_new_keys,
    the older batches are not read at all. -#}
{% macro raw_rows_of_new_batches(relation) -%}
    select * from {{ relation }}
    {%- if incremental_night() %}
    where _batch_id > {{ var('changed_since_batch') }}
    {%- endif -%}
{%- endmacro %}

{#- The raw rows a staging model rebuilds tonight: every raw row of a key (`key_expr`,
    computed from the raw row as the model computes it) that has a row in a batch newer
    than the last build. All rows outside an incremental night. -#}
{% macro raw_rows_of_new_keys(relation, key_expr) -%}
    {%- if incremental_night() -%}
    select * from {{ relation }}
    where {{ key_expr }} in (
        select {{ key_expr }} from {{ relation }}
        where _batch_id > {{ var('changed_since_batch') }}
    )
    {%- else -%}
    select * from {{ relation }}
    {%- endif -%}
{%- endmacro %}

{#- Incremental strategy `replace`: a model's rows for tonight's keys are deleted and the
    rebuilt ones inserted, in the model's transaction.

    config `replace_by`:
    - 'key' (staging): the rows whose unique key was rebuilt (every rebuilt key has rows:
      a staging model keeps one row per key, or every group of its raw rows). The deals of
      the removed and the written rows go to the changed-deals log.
    - 'changed_deals' (per-deal models): the rows of every deal in int_changed_deals, and
      of every deal the rebuild wrote (a model may widen the set, e.g. to a customer's
      other deals), so a deal whose rows vanished tonight loses them. -#}
{% macro get_incremental_replace_sql(arg_dict) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set temp = arg_dict['temp_relation'] -%}
    {%- set key = arg_dict['unique_key'] -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    {%- set replace_by = config.get('replace_by') -%}
    {%- if not key or replace_by not in ('key', 'changed_deals') -%}
        {{ exceptions.raise_compiler_error("strategy 'replace' needs unique_key and replace_by ('key' or 'changed_deals') on " ~ this) }}
    {%- endif -%}
    {%- if replace_by == 'key' %}
    {%- if key == 'deal_id' %}
    {#- The removed rows' deals are the rebuilt keys: no lookup in the target. #}
    insert into {{ changed_deals_log() }} (deal_id)
        select distinct deal_id from {{ temp }};
    {%- else %}
    insert into {{ changed_deals_log() }} (deal_id)
        select deal_id from {{ target }}
        where {{ key }} in (select {{ key }} from {{ temp }})
        union
        select deal_id from {{ temp }};
    {%- endif %}
    delete from {{ target }}
    where {{ key }} in (select {{ key }} from {{ temp }});
    {%- else %}
    {#- One IN over both sets: an OR of two IN subqueries scans the target about half as
        fast (DuckDB). #}
    delete from {{ target }}
    where deal_id in (
        select deal_id from {{ changed_deals_relation() }}
        union
        select deal_id from {{ temp }}
    );
    {%- endif %}
    insert into {{ target }} ({{ columns }})
        select {{ columns }} from {{ temp }};
{%- endmacro %}

{#- On an incremental night a data test of a model replaced in part checks the rows
    rebuilt tonight (the other deals' rows are those that passed last night): of the deals
    in int_changed_deals for per-deal models (read by their mark, build_mark, where they
    have one), of the deals in the changed-deals log for staging models. A test may say so
    itself with `where: "__changed_deals__"` or `"__staged_deals__"` (the tests of the
    staging unions, views). Outside an incremental night both select every row. -#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- set incremental = incremental_build() -%}
    {%- if incremental and not where -%}
        {%- set replace_by = replaced_in_part() -%}
        {%- if replace_by == 'changed_deals' and attached_node().config.get('build_mark') -%}
            {%- set where = marked_tonight() ~ ' and __changed_deals__' -%}
        {%- elif replace_by == 'changed_deals' -%}
            {%- set where = '__changed_deals__' -%}
        {%- elif replace_by == 'key' -%}
            {%- set where = '__staged_deals__' -%}
        {%- endif -%}
    {%- endif -%}
    {%- if not where -%}
        {{ return(relation) }}
    {%- endif -%}
    {%- if incremental -%}
        {%- set where = where
            | replace('__changed_deals__', in_changed_deals())
            | replace('__staged_deals__', in_staged_deals()) -%}
    {%- else -%}
        {%- set where = where | replace('__changed_deals__', '1 = 1') | replace('__staged_deals__', '1 = 1') -%}
    {%- endif -%}
    {%- set filtered -%}
        (select * from {{ relation }} where {{ where }}) dbt_subquery
    {%- endset -%}
    {{ return(filtered) }}
{%- endmacro %}

{#- The `replace_by` of the incremental model the data test being compiled is attached to
    (strategy `replace`), 'changed_deals' for a view declared a per-deal table's
    (`replace_by: changed_deals`), or none. -#}
{% macro replaced_in_part() -%}
    {%- set node = attached_node() -%}
    {%- if node and node.config.materialized == 'incremental'
          and node.config.incremental_strategy == 'replace' -%}
        {{ return(node.config.get('replace_by')) }}
    {%- endif -%}
    {%- if node and node.config.materialized == 'view'
          and node.config.get('replace_by') == 'changed_deals' -%}
        {{ return('changed_deals') }}
    {%- endif -%}
    {{ return(none) }}
{%- endmacro %}

{#- The model (graph node) the data test being compiled is attached to, or none. -#}
{% macro attached_node() -%}
    {{ return(graph.nodes.get(model.get('attached_node') or '')) }}
{%- endmacro %}
