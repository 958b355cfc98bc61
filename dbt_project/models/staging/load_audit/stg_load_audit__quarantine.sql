with

source as (

    select * from {{ source('load_audit', '_quarantine') }}

),

batches as (

    select * from {{ source('load_audit', '_batches') }}

),

final as (

    -- Rows of superseded file versions were replaced with their file: only current ones.
    select
        source._source_system as source_system,
        source.raw_table,
        source._source_file as source_file,
        source.line_number,
        source.reason
    from source
    inner join batches
        on source._batch_id = batches.batch_id
    where batches.superseded_by is null

)

select * from final
