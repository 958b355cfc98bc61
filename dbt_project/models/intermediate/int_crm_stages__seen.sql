{#- Every CRM stage the data uses (current stages of deals and stages in their history),
    with its mapping. The `all_crm_stages_mapped` test fails the build naming any stage
    that is not mapped. On an incremental night, the stages of the deals staged tonight:
    the other deals' stages passed the build that staged them, and a changed stage mapping
    makes a full build (night/build_state.py). -#}

with

deals as (

    select * from {{ ref('int_deals__unioned') }}{{ where_staged_deal() }}

),

stage_changes as (

    select * from {{ ref('int_deal_stage_changes__unioned') }}{{ where_staged_deal() }}

),

stage_mapping as (

    select * from {{ ref('int_stage_mapping') }}

),

seen as (

    select
        source_system,
        pipeline,
        crm_stage,
        count(*) as deals_now_in_stage,
        0 as changes_to_stage
    from deals
    group by source_system, pipeline, crm_stage

    union all

    select
        deals.source_system,
        deals.pipeline,
        stage_changes.crm_stage,
        0 as deals_now_in_stage,
        count(*) as changes_to_stage
    from stage_changes
    inner join deals on stage_changes.deal_id = deals.deal_id
    group by deals.source_system, deals.pipeline, stage_changes.crm_stage

),

final as (

    select
        seen.source_system,
        seen.pipeline,
        seen.crm_stage,
        sum(seen.deals_now_in_stage) as deals_now_in_stage,
        sum(seen.changes_to_stage) as changes_to_stage,
        max(stage_mapping.funnel_stage) as funnel_stage
    from seen
    left join stage_mapping
        on seen.source_system = stage_mapping.source_system
        and seen.pipeline = stage_mapping.pipeline
        and seen.crm_stage = stage_mapping.crm_stage
    group by seen.source_system, seen.pipeline, seen.crm_stage

)

select * from final
