{#- The export has no stage history: it is built from the successive exports, a change
    dated by "Deal - Last stage change" when that falls between the two exports
    (docs/snapshot-history.md). -#}

with

snapshots as (

    select * from {{ ref('stg_pipedrive_export__deal_snapshots') }}

),

final as (

    {{ stage_changes_from_snapshots('snapshots', stage_changed_at='stage_changed_at') }}

)

select * from final
