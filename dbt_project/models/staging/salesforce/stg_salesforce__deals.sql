with

opportunities as (

    select * from {{ source('salesforce', 'salesforce__opportunities') }}

),

record_types as (

    select * from {{ source('salesforce', 'salesforce__record_types') }}

),

users as (

    select * from {{ source('salesforce', 'salesforce__users') }}

),

organization as (

    select * from {{ source('salesforce', 'salesforce__organization') }}

),

stage_changes as (

    select * from {{ ref('stg_salesforce__deal_stage_changes') }}

),

parsed as (

    select
        -- ids
        _source_system as source_system,
        record_id as crm_deal_id,
        {{ json_text('record', 'OwnerId') }} as crm_owner_id,
        {{ json_text('record', 'AccountId') }} as account_id,
        {{ json_text('record', 'RecordTypeId') }} as record_type_id,

        -- attributes
        {{ json_text('record', 'Name') }} as deal_name,
        {{ json_text('record', 'StageName') }} as stage_name,
        {{ json_text('record', 'LeadSource') }} as lead_source,
        {{ json_text('record', 'IsClosed') }} = 'true' as is_closed,
        {{ json_text('record', 'IsWon') }} = 'true' as is_won,
        {{ json_text('record', 'IsDeleted') }} = 'true' as is_deleted,

        -- amounts (the JSON number's text: cast to a decimal, never through a float)
        {{ json_text('record', 'Amount') }} as amount,
        {{ json_text('record', 'CurrencyIsoCode') }} as currency,

        -- dates and timestamps
        cast({{ json_text('record', 'CloseDate') }} as date) as close_date,
        {{ to_utc_timestamp(json_text('record', 'CreatedDate')) }} as created_at,
        {{ to_utc_timestamp(json_text('record', 'LastModifiedDate')) }} as updated_at,
        {{ to_utc_timestamp(json_text('record', 'LastStageChangeDate')) }} as stage_changed_at
    from opportunities

),

current_stage_entries as (

    -- When a deal last entered a stage, per stage: the close time of a closed deal whose
    -- Opportunity lacks LastStageChangeDate (rows read before the field was selected).
    select
        deal_id,
        crm_stage,
        max(changed_at) as entered_at
    from stage_changes
    group by deal_id, crm_stage

),

final as (

    select
        parsed.source_system,
        parsed.source_system || ':' || parsed.crm_deal_id as deal_id,
        parsed.crm_deal_id,
        case
            when parsed.crm_owner_id is not null
                then parsed.source_system || ':' || parsed.crm_owner_id
        end as owner_id,
        parsed.account_id as company_id,
        parsed.deal_name,
        -- Opportunities without a record type follow the org's master sales process.
        coalesce({{ json_text('record_types.record', 'Name') }}, 'Master') as pipeline,
        parsed.stage_name as crm_stage,
        case
            when parsed.is_won then 'won'
            when parsed.is_closed then 'lost'
            else 'open'
        end as status,
        -- The owner's current name (User.Name), the name the marts show for the owner.
        {{ json_text('users.record', 'Name') }} as owner_name,
        nullif(trim(parsed.lead_source), '') as lead_source,
        cast(parsed.amount as numeric(38, 6)) as amount,
        -- A single-currency org has no CurrencyIsoCode: its corporate currency counts.
        upper(
            coalesce(
                parsed.currency,
                {{ json_text('organization.record', 'DefaultCurrencyIsoCode') }}
            )
        ) as currency,
        parsed.created_at,
        -- Status and close come from the Opportunity, never from the history alone, which
        -- may lack the close (or any row): the close is its last stage change (IsClosed is
        -- set by entering a closed stage), else the history's entry into the current
        -- stage, else the Close Date (a date only: midnight UTC).
        case
            when parsed.is_closed
                then coalesce(
                    parsed.stage_changed_at,
                    current_stage_entries.entered_at,
                    cast(parsed.close_date as timestamp)
                )
        end as closed_at,
        parsed.updated_at
    from parsed
    left join record_types
        on parsed.source_system = record_types._source_system
        and parsed.record_type_id = record_types.record_id
    left join users
        on parsed.source_system = users._source_system
        and parsed.crm_owner_id = users.record_id
    left join organization
        on parsed.source_system = organization._source_system
    left join current_stage_entries
        on parsed.source_system || ':' || parsed.crm_deal_id = current_stage_entries.deal_id
        and parsed.stage_name = current_stage_entries.crm_stage
    -- Deleted in Salesforce (in the recycle bin): gone from the figures, as from the CRM.
    where not parsed.is_deleted

)

select * from final
