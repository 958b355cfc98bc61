{{ config(
    materialized='incremental',
    incremental_strategy='replace',
    unique_key='deal_id',
    replace_by='key',
) }}

with

source as (

    {{ raw_rows_of_new_keys(
        source('canonical_csv', 'canonical_csv__deals'),
        "_source_system || ':' || trim(deal_id)",
    ) }}

),

renamed as (

    select
        -- ids
        _source_system as source_system,
        _source_system || ':' || trim(deal_id) as deal_id,
        trim(deal_id) as crm_deal_id,
        case
            when nullif(trim(owner_id), '') is not null
                then _source_system || ':' || trim(owner_id)
        end as owner_id,
        nullif(trim(company_id), '') as company_id,

        -- attributes
        nullif(trim(deal_name), '') as deal_name,
        trim(pipeline) as pipeline,
        trim(stage) as crm_stage,
        lower(trim(status)) as status,
        nullif(trim(owner_name), '') as owner_name,
        nullif(trim(lead_source), '') as lead_source,

        -- amounts
        cast(nullif(trim(amount), '') as numeric(38, 6)) as amount,
        upper(nullif(trim(currency), '')) as currency,

        -- timestamps
        {{ to_utc_timestamp("nullif(trim(created_at), '')") }} as created_at,
        {{ to_utc_timestamp("nullif(trim(closed_at), '')") }} as closed_at,
        {{ to_utc_timestamp("nullif(trim(updated_at), '')") }} as updated_at,

        -- load metadata
        _batch_id,
        _source_file,
        _row_number

    from source

),

versions as (

    select
        *,
        row_number() over (
            partition by deal_id
            order by updated_at desc nulls last, _batch_id desc, _row_number desc
        ) as version_rank
    from renamed

),

final as (

    select
        source_system,
        deal_id,
        crm_deal_id,
        owner_id,
        company_id,
        deal_name,
        pipeline,
        crm_stage,
        status,
        owner_name,
        lead_source,
        amount,
        currency,
        created_at,
        closed_at,
        updated_at,
        _batch_id,
        _source_file,
        _row_number
    from versions
    where version_rank = 1

)

select * from final
