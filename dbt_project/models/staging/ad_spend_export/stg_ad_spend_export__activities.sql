{#- Cost reports hold no activities: an empty relation of the canonical shape. -#}

with

final as (

    {{ empty_staged('activities') }}

)

select * from final
