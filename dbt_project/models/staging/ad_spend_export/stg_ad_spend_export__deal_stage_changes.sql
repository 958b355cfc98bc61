{#- Cost reports hold no stage history: an empty relation of the canonical shape. -#}

with

final as (

    select
        cast(null as varchar) as source_system,
        cast(null as varchar) as deal_id,
        cast(null as varchar) as crm_stage,
        cast(null as timestamp) as changed_at
    where 1 = 0

)

select * from final
