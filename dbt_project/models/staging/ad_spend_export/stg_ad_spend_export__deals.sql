{#- Cost reports hold no deals: an empty relation of the canonical shape. -#}

with

final as (

    {{ empty_staged('deals') }}

)

select * from final
