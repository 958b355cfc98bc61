{#- The rows of a stage history that enter a stage, whatever order same-instant rows take.

    CRMs such as Salesforce write a history row on every save (amount, close date,
    probability) with the then-current stage. Such a row repeats the stage and is dropped
    only where it is a repeat under every order of equal timestamps: it is the only stage
    at its instant and the only stage at the deal's instant before. Rows sharing an instant
    with another stage are kept: the marts order them (int_stage_changes__mapped: time, then
    funnel order, lost last) and collapse repeats into one spell, so a genuine later
    re-entry is never dropped by an order the marts do not use (issue 14). `rows` is a CTE
    with `crm_stage`, `changed_at` and the columns of `deal_key` (a list). -#}
{% macro without_repeated_stages(rows, deal_key) -%}
    {%- set key = deal_key | join(', ') -%}
    select {{ rows }}.*
    from {{ rows }}
    left join (
        select
            {{ key }},
            changed_at,
            stages_at,
            lag(stages_at) over (
                partition by {{ key }} order by changed_at
            ) as previous_stages_at,
            lag(only_stage) over (
                partition by {{ key }} order by changed_at
            ) as previous_only_stage,
            only_stage
        from (
            select
                {{ key }},
                changed_at,
                count(distinct crm_stage) as stages_at,
                min(crm_stage) as only_stage
            from {{ rows }}
            where changed_at is not null
            group by {{ key }}, changed_at
        ) as stage_instants
    ) as instants
        on
        {%- for column in deal_key %}
        {{ rows }}.{{ column }} = instants.{{ column }} and
        {%- endfor %}
        {{ rows }}.changed_at = instants.changed_at
    where not coalesce(
        instants.stages_at = 1
        and instants.previous_stages_at = 1
        and instants.previous_only_stage = instants.only_stage,
        false
    )
{%- endmacro %}
