{#- Cost reports hold no deals: an empty relation of the canonical shape. -#}

with

final as (

    select
        cast(null as varchar) as source_system,
        cast(null as varchar) as deal_id,
        cast(null as varchar) as crm_deal_id,
        cast(null as varchar) as owner_id,
        cast(null as varchar) as company_id,
        cast(null as varchar) as deal_name,
        cast(null as varchar) as pipeline,
        cast(null as varchar) as crm_stage,
        cast(null as varchar) as status,
        cast(null as varchar) as owner_name,
        cast(null as varchar) as lead_source,
        cast(null as numeric(38, 6)) as amount,
        cast(null as varchar) as currency,
        cast(null as timestamp) as created_at,
        cast(null as timestamp) as closed_at,
        cast(null as timestamp) as updated_at
    where 1 = 0

)

select * from final
