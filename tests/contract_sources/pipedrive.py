"""The Pipedrive API source, fed the sample through the fake Pipedrive server over HTTP;
spend comes from the sample's spend file (Pipedrive holds none)."""

from __future__ import annotations

from source_contract import (
    OWNER_NAME,
    ContractSource,
    Limit,
    api_presenter,
    history_for_deals_without,
)

from devkit.fake_servers.pipedrive import build_server

TOKEN = "contract-pipedrive-token"


present = api_presenter(build_server, "pipedrive", TOKEN, ", page_size: 100")


CONTRACT = ContractSource(
    type="pipedrive",
    door="api",
    present=present,
    # `D0000042` -> "42": the fake's ids are the sample's numbers.
    crm_id=lambda canonical: str(int(canonical[1:])),
    limits=(
        OWNER_NAME,
        Limit(
            "a deal's change log starts with its creation entry: a deal without stage"
            " history enters its current stage at creation",
            "docs/api-sources.md, Pipedrive",
            history_for_deals_without(lambda deal: deal["created_at"]),
        ),
    ),
    reach=(
        (
            """select distinct _source_system || ':' || record_id from raw.pipedrive__deals
               where json_extract_string(record, '$.status') <> 'deleted'""",
            "select deal_id from staging.stg_pipedrive__deals",
        ),
        (
            # A live deal's stages: the one it was created in, then every stage move.
            """with live as (
                   select record_id from raw.pipedrive__deals
                   where json_extract_string(record, '$.status') <> 'deleted')
               select (select count(*) from live) + count(*)
               from raw.pipedrive__deal_flow as f
               where json_extract_string(f.record, '$.data.field_key') = 'stage_id'
                 and f.merge_key in (select record_id from live)""",
            "select count(*) from staging.stg_pipedrive__deal_stage_changes",
        ),
    ),
)
