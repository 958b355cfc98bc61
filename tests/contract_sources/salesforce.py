"""The Salesforce API source, fed the sample through the fake Salesforce REST API over
HTTP; spend comes from the sample's spend file (Salesforce holds none)."""

from __future__ import annotations

from source_contract import OWNER_NAME, ContractSource, api_presenter

from devkit.fake_servers.salesforce import build_server, to_sf_id

TOKEN = "contract-salesforce-token"


present = api_presenter(build_server, "salesforce", TOKEN)

_OBJECTS = {"D": "Opportunity", "U": "User", "C": "Account"}


def crm_id(canonical: str) -> str:
    """`D0000042` -> `006000000000042AAA` (the fake's 18-character ids)."""
    return to_sf_id(_OBJECTS[canonical[0]], canonical)


CONTRACT = ContractSource(
    type="salesforce",
    door="api",
    present=present,
    limits=(OWNER_NAME,),
    crm_id=crm_id,
    reach=(
        (
            """select distinct _source_system || ':' || record_id
               from raw.salesforce__opportunities
               where json_extract_string(record, '$.IsDeleted') <> 'true'""",
            "select deal_id from staging.stg_salesforce__deals",
        ),
    ),
)
