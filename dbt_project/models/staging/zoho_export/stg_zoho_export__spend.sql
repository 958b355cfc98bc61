{#- A Zoho deals export holds no spend: an empty relation of the canonical shape, so the source type
    unions like every other (spend comes from a spend source). -#}

with

final as (

    select
        cast(null as varchar) as source_system,
        cast(null as date) as spend_date,
        cast(null as varchar) as channel,
        cast(null as varchar) as category,
        cast(null as varchar) as currency,
        cast(null as numeric(38, 6)) as amount,
        cast(null as bigint) as spend_lines
    where 1 = 0

)

select * from final
