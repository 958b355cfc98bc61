{#- Spend lines without a channel (usually sales costs) are in mart_cac only. -#}

with

deals as (

    select * from {{ ref('int_deals__measured') }}

),

spend as (

    select * from {{ ref('int_spend__converted') }}

),

channel_mapping as (

    select * from {{ ref('stg_reference__channel_mapping') }}

),

months as (

    select * from {{ ref('int_months') }}

),

channels as (

    select distinct trim(channel) as channel from channel_mapping
    union
    select distinct channel from spend
    where channel is not null
    union
    select 'unattributed' as channel

),

channel_spend as (

    select
        month,
        channel,
        sum(amount_reporting) as spend
    from spend
    where channel is not null
    group by month, channel

),

new_customers as (

    select
        closed_month as month,
        channel,
        count(*) as new_customers
    from deals
    where is_first_win_of_customer
    group by closed_month, channel

),

final as (

    select
        months.month,
        channels.channel,
        {{ round_money('coalesce(channel_spend.spend, 0)') }} as spend,
        coalesce(new_customers.new_customers, 0) as new_customers,
        case
            when channels.channel = 'unattributed' then null
            else {{ money_ratio(
                'coalesce(channel_spend.spend, 0)',
                'coalesce(new_customers.new_customers, 0)'
            ) }}
        end as cac
    from months
    cross join channels
    left join channel_spend
        on months.month = channel_spend.month
        and channels.channel = channel_spend.channel
    left join new_customers
        on months.month = new_customers.month
        and channels.channel = new_customers.channel

)

select * from final
