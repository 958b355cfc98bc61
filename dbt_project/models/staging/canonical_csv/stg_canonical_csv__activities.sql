{{ config(
    materialized='incremental',
    incremental_strategy='replace',
    unique_key='activity_id',
    replace_by='key',
) }}

with

source as (

    -- An activity's row is its newest (versions, below): tonight's batches hold it.
    {{ raw_rows_of_new_batches(source('canonical_csv', 'canonical_csv__activities')) }}

),

renamed as (

    select
        -- ids
        _source_system as source_system,
        _source_system || ':' || trim(activity_id) as activity_id,
        _source_system || ':' || trim(deal_id) as deal_id,
        case
            when nullif(trim(owner_id), '') is not null
                then _source_system || ':' || trim(owner_id)
        end as owner_id,

        -- attributes
        lower(nullif(trim(activity_type), '')) as activity_type,

        -- timestamps
        {{ to_utc_timestamp('trim(occurred_at)') }} as occurred_at,

        -- load metadata
        _batch_id,
        _row_number

    from source

),

versions as (

    select
        *,
        row_number() over (
            partition by activity_id order by _batch_id desc, _row_number desc
        ) as version_rank
    from renamed

),

final as (

    select
        source_system,
        activity_id,
        deal_id,
        owner_id,
        activity_type,
        occurred_at,
        _batch_id
    from versions
    where version_rank = 1

)

select * from final
