{#- A HubSpot deals export holds no activities: an empty relation of the canonical shape,
    so the source type unions like every other. -#}

with

final as (

    select
        cast(null as varchar) as source_system,
        cast(null as varchar) as activity_id,
        cast(null as varchar) as deal_id,
        cast(null as varchar) as owner_id,
        cast(null as varchar) as activity_type,
        cast(null as timestamp) as occurred_at
    where 1 = 0

)

select * from final
