{#- Every source's staged activities in the canonical shape. -#}

with

unioned as (

    {{
        union_staged('activities', [
            'source_system', 'activity_id', 'deal_id', 'owner_id',
            'activity_type', 'occurred_at'
        ])
    }}

),

final as (

    select * from unioned

)

select * from final
