{{ config(
    materialized='incremental',
    incremental_strategy='replace',
    unique_key='deal_id',
    replace_by='key',
) }}

with

source as (

    {{ raw_rows_of_new_keys(
        source('canonical_csv', 'canonical_csv__deal_stage_history'),
        "_source_system || ':' || trim(deal_id)",
    ) }}

),

renamed as (

    select
        -- ids
        _source_system as source_system,
        _source_system || ':' || trim(deal_id) as deal_id,

        -- attributes
        trim(stage) as crm_stage,

        -- timestamps
        {{ to_utc_timestamp('trim(changed_at)') }} as changed_at,

        -- load metadata
        _batch_id

    from source

),

final as (

    -- The same change exported in several files counts once.
    select
        source_system,
        deal_id,
        crm_stage,
        changed_at,
        max(_batch_id) as _batch_id
    from renamed
    group by source_system, deal_id, crm_stage, changed_at

)

select * from final
