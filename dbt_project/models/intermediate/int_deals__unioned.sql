{#- Every source's staged deals in the canonical shape. -#}

with

unioned as (

    {{
        union_staged('deals', [
            'source_system', 'deal_id', 'crm_deal_id', 'owner_id', 'owner_name',
            'company_id', 'deal_name', 'pipeline', 'crm_stage', 'status',
            'lead_source', 'amount', 'currency', 'created_at', 'closed_at',
            'updated_at'
        ])
    }}

),

final as (

    select * from unioned

)

select * from final
