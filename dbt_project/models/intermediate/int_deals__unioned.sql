{#- Every source's staged deals in the canonical shape. -#}

with

unioned as (

    {{ union_staged('deals') }}

),

final as (

    select * from unioned

)

select * from final
