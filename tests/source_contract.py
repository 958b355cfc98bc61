"""The source contract: what every source type (file format or API) must satisfy.

A source type joins the contract by adding one module to tests/contract_sources/ with a
`CONTRACT = ContractSource(...)`: how to present the generated sample data through that
source (files in its format, or a fake server) and which raw keys must reach staging.
tests/test_source_contract.py then runs the same checks on every one of them:

1. figures: a night through the source gives the same aggregate marts as the same data
   through the canonical CSV path (the marts it can reproduce; `comparable_marts`);
2. idempotent reload: running the night again changes neither raw nor any mart;
3. quarantine accounting: every batch's raw rows and quarantined rows are what it
   reported, and for files, loaded + quarantined = the records in the file;
4. every raw row reaches staging or quarantine: the keys of raw equal the keys staged.
"""

from __future__ import annotations

import csv
import importlib
import pkgutil
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from api_nights import SAME_ROWS

# The contract's source name: deal ids are prefixed with it on every path.
SOURCE_NAME = "demo_crm"


@dataclass(frozen=True)
class Presented:
    """The sample data presented through a source: its config entries and environment."""

    sources_yaml: str  # the `sources:` list items of a pipeline config (YAML, indented 2)
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ContractSource:
    type: str
    # (sample folder, work folder, ExitStack for servers) -> the source's config entries.
    # The deals, history and activities come in through the source named SOURCE_NAME;
    # spend may come through a canonical_csv source beside it if the type has none.
    present: Callable[[Path, Path, ExitStack], Presented]
    # Pairs of SQL over the warehouse: the keys raw holds, the keys staging holds; equal.
    reach: tuple[tuple[str, str], ...]
    comparable_marts: tuple[str, ...] = SAME_ROWS
    # "file" (files in a landing folder) or "api" (a CRM's API over HTTP): which test file
    # runs its checks (tests/test_source_contract.py or tests/test_source_contract_api.py).
    door: str = "file"


def contract_sources() -> dict[str, ContractSource]:
    """Every module in tests/contract_sources/ that defines CONTRACT."""
    import contract_sources as package

    found: dict[str, ContractSource] = {}
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"contract_sources.{info.name}")
        contract = getattr(module, "CONTRACT", None)
        if contract is not None:
            found[info.name] = contract
    return found


def spend_only(sample: Path, work: Path) -> str:
    """A canonical_csv source entry with just the sample's spend file."""
    folder = work / "spend"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "spend.csv").write_bytes((sample / "spend.csv").read_bytes())
    return f"  - {{name: demo_spend, type: canonical_csv, landing_dir: '{folder}'}}\n"


def count_records(
    path: Path, delimiter: str, encoding: str, quote: str = '"', header_line: int = 1
) -> int:
    """Data records of a CSV file by Python's csv module (independent of the loader):
    non-blank records after the header (line `header_line`; lines above it are a
    preamble)."""
    enc = "utf-8-sig" if encoding in ("utf-8", "utf-8-sig") else encoding
    with path.open(encoding=enc, errors="replace", newline="") as fh:
        for _ in range(header_line - 1):
            fh.readline()
        rows = list(csv.reader(fh, delimiter=delimiter, quotechar=quote))
    return sum(1 for row in rows[1:] if row)


def api_presenter(build_server: Callable, source_type: str, token: str, settings: str = ""):
    """`present` for an API source: the sample served by its fake server (`build_server`,
    with the token), the source reading it over HTTP with the token from an environment
    variable, and spend from the sample's spend file (a CRM holds none)."""
    from devkit.fake_servers.dataset import SampleDataset

    token_env = f"CONTRACT_{source_type.upper()}_TOKEN"

    def present(sample: Path, work: Path, stack: ExitStack) -> Presented:
        server = stack.enter_context(build_server(SampleDataset(sample), token=token))
        return Presented(
            f"  - {{name: {SOURCE_NAME}, type: {source_type}, base_url: '{server.url}',"
            f" token_env: {token_env}{settings}}}\n" + spend_only(sample, work),
            env={token_env: token},
        )

    return present
