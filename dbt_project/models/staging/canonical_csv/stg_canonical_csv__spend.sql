with

source as (

    select * from {{ source('canonical_csv', 'canonical_csv__spend') }}

),

renamed as (

    select
        -- keys
        _source_system as source_system,
        cast(trim("date") as date) as spend_date,
        nullif(trim(channel), '') as channel,
        lower(trim(category)) as category,
        upper(trim(currency)) as currency,

        -- amounts
        cast(trim(amount) as numeric(38, 6)) as amount,

        -- load metadata
        _batch_id

    from source

),

restated as (

    -- A spend line is keyed by (date, channel, category, currency): when a later file
    -- restates a key, the later file wins; lines of one file with the same key add up.
    select
        *,
        max(_batch_id) over (
            partition by source_system, spend_date, coalesce(channel, ''), category, currency
        ) as latest_batch_id
    from renamed

),

final as (

    select
        source_system,
        spend_date,
        channel,
        category,
        currency,
        sum(amount) as amount,
        count(*) as spend_lines
    from restated
    where _batch_id = latest_batch_id
    group by source_system, spend_date, channel, category, currency

)

select * from final
