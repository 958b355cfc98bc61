{#- Every source's staged deal stage changes in the canonical shape. -#}

with

unioned as (

    {{
        union_staged('deal_stage_changes', [
            'source_system', 'deal_id', 'crm_stage', 'changed_at'
        ])
    }}

),

final as (

    select * from unioned

)

select * from final
