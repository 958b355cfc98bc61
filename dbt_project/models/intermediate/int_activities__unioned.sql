{#- Every source's staged activities in the canonical shape. -#}

with

unioned as (

    {{ union_staged('activities') }}

),

final as (

    select * from unioned

)

select * from final
