"""The HubSpot API source, fed the sample through the fake HubSpot server over HTTP;
spend comes from the sample's spend file (HubSpot deals hold none)."""

from __future__ import annotations

from source_contract import OWNER_NAME, ContractSource, api_presenter

from devkit.fake_servers.hubspot import build_server

TOKEN = "contract-hubspot-token"


present = api_presenter(build_server, "hubspot", TOKEN)


_LIVE_DEALS = """select record_id from raw.hubspot__deals
                 where coalesce(json_extract_string(record, '$.archived'), 'false') <> 'true'"""

CONTRACT = ContractSource(
    type="hubspot",
    door="api",
    present=present,
    limits=(OWNER_NAME,),
    # `D0000042` -> "42": the fake's ids are the sample's numbers.
    crm_id=lambda canonical: str(int(canonical[1:])),
    reach=(
        (
            """select distinct _source_system || ':' || record_id from raw.hubspot__deals
               where coalesce(json_extract_string(record, '$.archived'), 'false') <> 'true'""",
            "select deal_id from staging.stg_hubspot__deals",
        ),
        (
            # Every dealstage history entry of a live deal is a stage change.
            f"""select count(*) from raw.hubspot__deal_stage_history
                where merge_key in ({_LIVE_DEALS})""",
            "select count(*) from staging.stg_hubspot__deal_stage_changes",
        ),
        (
            # Every live activity associated with a live deal.
            f"""select _source_system || ':' || record_id from raw.hubspot__activities
                where coalesce(json_extract_string(record, '$.archived'), 'false') <> 'true'
                  and json_extract_string(record, '$.associations.deals.results[0].id')
                      in ({_LIVE_DEALS})""",
            "select activity_id from staging.stg_hubspot__activities",
        ),
    ),
)
