{#- Pipedrive holds no spend: an empty relation of the canonical shape, so the source type
    unions like every other (spend comes from a spend source). -#}

with

final as (

    {{ empty_staged('spend') }}

)

select * from final
