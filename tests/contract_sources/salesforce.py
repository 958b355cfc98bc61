"""The Salesforce API source, fed the sample through the fake Salesforce REST API over
HTTP; spend comes from the sample's spend file (Salesforce holds none)."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

from source_contract import SOURCE_NAME, ContractSource, Presented, spend_only

from extract.fake_servers.dataset import SampleDataset
from extract.fake_servers.salesforce import build_server

TOKEN = "contract-salesforce-token"


def present(sample: Path, work: Path, stack: ExitStack) -> Presented:
    server = stack.enter_context(build_server(SampleDataset(sample), token=TOKEN))
    return Presented(
        f"  - {{name: {SOURCE_NAME}, type: salesforce, base_url: '{server.url}',"
        " token_env: CONTRACT_SALESFORCE_TOKEN}\n" + spend_only(sample, work),
        env={"CONTRACT_SALESFORCE_TOKEN": TOKEN},
    )


CONTRACT = ContractSource(
    type="salesforce",
    present=present,
    file_based=False,
    reach=(
        (
            """select distinct _source_system || ':' || record_id
               from raw.salesforce__opportunities
               where json_extract_string(record, '$.IsDeleted') <> 'true'""",
            "select deal_id from staging.stg_salesforce__deals",
        ),
    ),
)
