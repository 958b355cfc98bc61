{#- Marketing spend from ad platforms' cost reports, in the canonical shape. A campaign's
    day is keyed by (source, day, campaign, currency): a later file restating it replaces
    it, lines of one file with the key add up. Campaigns map to channels by the source's
    settings (raw.ad_spend_export__campaign_channels); a campaign no rule maps is
    `unattributed`, never dropped. -#}

with

google_ads as (

    select * from {{ source('ad_spend_export', 'ad_spend_export__google_ads') }}

),

meta_ads as (

    select * from {{ source('ad_spend_export', 'ad_spend_export__meta_ads') }}

),

campaign_channels as (

    select * from {{ source('ad_spend_export', 'ad_spend_export__campaign_channels') }}

),

google_lines as (

    select
        _source_system as source_system,
        cast(trim(day) as date) as spend_date,
        trim(campaign) as campaign,
        upper(trim(currency_code)) as currency,
        cast(trim(cost) as numeric(38, 6)) as amount,
        _batch_id
    from google_ads

),

meta_amounts as (

    select
        meta_ads._source_system as source_system,
        cast(coalesce(nullif(trim(meta_ads.day), ''), trim(meta_ads.reporting_starts)) as date)
            as spend_date,
        trim(meta_ads.campaign_name) as campaign,
        -- `Amount spent (EUR)`: the currency is the header's, else the Currency column's.
        upper(
            coalesce(
                case
                    when members.member_key like '%(___)'
                        then substring(members.member_key, length(members.member_key) - 3, 3)
                end,
                nullif(trim(meta_ads.currency), '')
            )
        ) as currency,
        cast(members.member_value as numeric(38, 6)) as amount,
        meta_ads._batch_id
    from meta_ads
    cross join {{ json_members('meta_ads.amount_spent') }} as members
    -- An empty amount is no spend that day.
    where members.member_value is not null

),

lines as (

    select * from google_lines
    union all
    select * from meta_amounts

),

restated as (

    select
        *,
        max(_batch_id) over (
            partition by source_system, spend_date, campaign, currency
        ) as latest_batch_id
    from lines

),

mapped as (

    select
        restated.source_system,
        restated.spend_date,
        coalesce(campaign_channels.channel, 'unattributed') as channel,
        restated.currency,
        restated.amount
    from restated
    left join campaign_channels
        on restated.source_system = campaign_channels._source_system
        and restated.campaign = campaign_channels.campaign
    where restated._batch_id = restated.latest_batch_id

),

final as (

    select
        source_system,
        spend_date,
        channel,
        'marketing' as category,
        currency,
        sum(amount) as amount,
        count(*) as spend_lines
    from mapped
    group by source_system, spend_date, channel, currency

)

select * from final
