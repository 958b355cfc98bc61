{#- A HubSpot deals export holds no activities: an empty relation of the canonical shape,
    so the source type unions like every other. -#}

with

final as (

    {{ empty_staged('activities') }}

)

select * from final
