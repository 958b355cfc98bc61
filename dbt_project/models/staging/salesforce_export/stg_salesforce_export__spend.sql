{#- Opportunity reports hold no spend: an empty relation of the canonical shape (spend comes
    from a spend source). -#}

with

final as (

    {{ empty_staged('spend') }}

)

select * from final
