{#- Every source's staged spend in the canonical shape. -#}

with

unioned as (

    {{ union_staged('spend') }}

),

final as (

    select * from unioned

)

select * from final
