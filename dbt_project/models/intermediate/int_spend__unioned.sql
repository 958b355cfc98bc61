{#- Every source's staged spend in the canonical shape. -#}

with

unioned as (

    {{
        union_staged('spend', [
            'source_system', 'spend_date', 'channel', 'category', 'currency',
            'amount', 'spend_lines'
        ])
    }}

),

final as (

    select * from unioned

)

select * from final
