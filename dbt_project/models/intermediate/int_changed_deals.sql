{#- The deals whose per-deal rows an incremental night rebuilds (macros/incremental.sql):
    1. the deals of every staged row the staging models removed or wrote tonight (their
       log), including the deal an activity moved away from;
    2. open deals' touches count activities up to the as-of time: the deals with an
       activity between the previous night's as-of time and tonight's;
    3. a deal's first win is ranked among its customer's won deals (int_deals__measured):
       when one of those deals was won last night or is won now, every won deal of its
       customer then and now.
    Empty outside an incremental night (a full refresh rebuilds every deal). -#}

{{ config(materialized='table') }}
-- depends_on: {{ ref('int_activities__unioned') }}
-- depends_on: {{ ref('int_deals__unioned') }}

{%- set previous = adapter.get_relation(
    database=this.database, schema=this.schema, identifier='int_deals__measured') %}
{%- if execute and incremental_build() and previous is none %}
    {{ exceptions.raise_compiler_error("an incremental night needs the last build's int_deals__measured in " ~ this.schema ~ ": run a full refresh") }}
{%- endif %}

with

{% if incremental_build() %}

logged as (

    select deal_id from {{ changed_deals_log() }}

),

touched as (

    select deal_id
    from {{ ref('int_activities__unioned') }}
    where
        occurred_at > cast('{{ var("previous_as_of") }}' as timestamp)
        and occurred_at <= {{ as_of() }}

),

changed as (

    select deal_id from logged
    union
    select deal_id from touched

),

deals as (

    select
        deal_id,
        status,
        {{ customer_id_of() }} as customer_id
    from {{ ref('int_deals__unioned') }}

),

candidates as (

    -- Each deal's customer as last night's build had it and as it is now.
    select
        deal_id,
        status,
        customer_id
    from {{ previous }}
    union all
    select
        deal_id,
        status,
        customer_id
    from deals

),

customers as (

    select candidates.customer_id
    from candidates
    where
        candidates.status = 'won'
        and candidates.deal_id in (select changed.deal_id from changed)

),

final as (

    select changed.deal_id from changed
    union
    select deals.deal_id
    from deals
    where
        deals.status = 'won'
        and deals.customer_id in (select customers.customer_id from customers)

)

{% else %}

final as (

    select cast(null as varchar) as deal_id
    where 1 = 0

)

{% endif %}

select * from final
