"""The Salesforce API source, fed the sample through the fake Salesforce REST API over
HTTP; spend comes from the sample's spend file (Salesforce holds none)."""

from __future__ import annotations

from source_contract import ContractSource, api_presenter

from devkit.fake_servers.salesforce import build_server

TOKEN = "contract-salesforce-token"


present = api_presenter(build_server, "salesforce", TOKEN)


CONTRACT = ContractSource(
    type="salesforce",
    door="api",
    present=present,
    reach=(
        (
            """select distinct _source_system || ':' || record_id
               from raw.salesforce__opportunities
               where json_extract_string(record, '$.IsDeleted') <> 'true'""",
            "select deal_id from staging.stg_salesforce__deals",
        ),
    ),
)
