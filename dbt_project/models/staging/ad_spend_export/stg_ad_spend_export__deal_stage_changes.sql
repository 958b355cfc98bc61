{#- Cost reports hold no stage history: an empty relation of the canonical shape. -#}

with

final as (

    {{ empty_staged('deal_stage_changes') }}

)

select * from final
