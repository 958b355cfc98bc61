{#- Every source's staged deal stage changes in the canonical shape. -#}

with

unioned as (

    {{ union_staged('deal_stage_changes') }}

),

final as (

    select * from unioned

)

select * from final
