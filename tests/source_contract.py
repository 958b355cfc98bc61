"""The source contract: what every source type (file format or API) must satisfy.

A source type joins the contract by adding one module to tests/contract_sources/ with a
`CONTRACT = ContractSource(...)`: how to present the generated sample data through that
source (files in its format, or a fake server) and which raw keys must reach staging.
tests/test_source_contract.py then runs the same checks on every one of them:

1. figures: a night through the source gives the same aggregate marts as the same data
   through the canonical CSV path (the marts it can reproduce; `comparable_marts`), the
   data reduced by the door's documented limits (`limits`: what it cannot carry) and by
   nothing else;
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
from datetime import datetime
from pathlib import Path

from api_nights import SAME_ROWS

from golden_marts import GRAIN

# The contract's source name: deal ids are prefixed with it on every path.
SOURCE_NAME = "demo_crm"


@dataclass(frozen=True)
class Presented:
    """The sample data presented through a source: its config entries and environment."""

    sources_yaml: str  # the `sources:` list items of a pipeline config (YAML, indented 2)
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Limit:
    """What a door cannot carry, as its docs say: `reduce` rewrites a copy of the canonical
    files (deals.csv, deal_stage_history.csv, activities.csv, spend.csv in a folder) to what
    the door does carry. The door's marts must equal the canonical path's on that copy."""

    name: str
    doc: str  # where the limit is documented
    reduce: Callable[[Path], None]


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
    # The door's documented limits: the only differences from the canonical path allowed.
    limits: tuple[Limit, ...] = ()
    # A sample id (`D0000042`, `U1003`, `C100067`) as the door's CRM gives it. With it,
    # `comparable_marts` is every mart (golden_marts.GRAIN), the deal-level ones included.
    crm_id: Callable[[str], str] | None = None

    def __post_init__(self) -> None:
        if self.crm_id is not None and self.comparable_marts == SAME_ROWS:
            object.__setattr__(self, "comparable_marts", tuple(GRAIN))

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


def stage_mapping_of(sample: Path) -> Path:
    """The stage mapping of a contract sample: the demo's plus its awkward pipelines'."""
    return sample.parent / "stage_mapping.csv"


def write_stage_mapping(path: Path) -> None:
    """config/reference/stage_mapping.csv with the rows of the awkward pipelines added."""
    from devkit.sample_data import awkward_stage_mapping
    from night.config import DEFAULT_REFERENCE_DIR

    text = (DEFAULT_REFERENCE_DIR / "stage_mapping.csv").read_text(encoding="utf-8")
    rows = "".join(",".join(row) + "\n" for row in awkward_stage_mapping())
    path.write_text((text if text.endswith("\n") else text + "\n") + rows, encoding="utf-8")


def rewrite_csv(path: Path, change: Callable[[list[dict[str, str]]], list[dict[str, str]]]) -> None:
    """Rewrite a CSV file's rows through `change` (rows as dicts), keeping its header."""
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        fields, rows = list(reader.fieldnames or []), list(reader)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(change(rows))


def _deals(folder: Path) -> list[dict[str, str]]:
    with (folder / "deals.csv").open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def deals_with_history(folder: Path) -> set[str]:
    """The deal ids that have stage history rows in a canonical folder."""
    with (folder / "deal_stage_history.csv").open(newline="", encoding="utf-8") as fh:
        return {row["deal_id"] for row in csv.DictReader(fh)}


def history_for_deals_without(entered_at: Callable[[dict[str, str]], str]) -> Callable:
    """A `reduce`: every deal without stage history gets one change, into its current
    stage at `entered_at(deal)`."""

    def reduce(folder: Path) -> None:
        path = folder / "deal_stage_history.csv"
        with_history = deals_with_history(folder)
        added = [
            {"deal_id": d["deal_id"], "stage": d["stage"], "changed_at": entered_at(d)}
            for d in _deals(folder)
            if d["deal_id"] not in with_history
        ]
        rewrite_csv(path, lambda rows: rows + added)

    return reduce


def one_name_per_owner(folder: Path) -> None:
    """A `reduce`: every deal shows its owner's current name, the one on the owner's most
    recently updated deal (a CRM user has one name; the canonical rows keep the name each
    deal was saved with)."""

    def instant(value: str) -> datetime:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))

    def change(rows: list[dict[str, str]]) -> list[dict[str, str]]:
        latest: dict[str, tuple[datetime, str, str]] = {}
        for row in rows:
            key = (instant(row["updated_at"]), row["deal_id"], row["owner_name"])
            if row["owner_id"] not in latest or key > latest[row["owner_id"]]:
                latest[row["owner_id"]] = key
        for row in rows:
            row["owner_name"] = latest[row["owner_id"]][2]
        return rows

    rewrite_csv(folder / "deals.csv", change)


OWNER_NAME = Limit(
    "an owner has one name, the current one: no name history per deal",
    "docs/api-sources.md, 'What each door cannot carry'",
    one_name_per_owner,
)


def owner_named_by_name(folder: Path) -> None:
    """A `reduce`: a deal's owner is known by the name it shows (an export carries no owner
    id), so an owner renamed midway is two owners."""

    def change(rows: list[dict[str, str]]) -> list[dict[str, str]]:
        for row in rows:
            row["owner_id"] = row["owner_name"]
        return rows

    rewrite_csv(folder / "deals.csv", change)


def no_activities(folder: Path) -> None:
    """A `reduce`: no activities (the door carries none)."""
    rewrite_csv(folder / "activities.csv", lambda rows: [])


def reduced_copy(sample: Path, out: Path, limits: tuple[Limit, ...]) -> Path:
    """The sample's canonical files as `limits` leave them, in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    for name in ("deals.csv", "deal_stage_history.csv", "activities.csv", "spend.csv"):
        (out / name).write_bytes((sample / name).read_bytes())
    for limit in limits:
        limit.reduce(out)
    return out


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
        dataset = SampleDataset(sample, stage_mapping=stage_mapping_of(sample))
        server = stack.enter_context(build_server(dataset, token=token))
        return Presented(
            f"  - {{name: {SOURCE_NAME}, type: {source_type}, base_url: '{server.url}',"
            f" token_env: {token_env}{settings}}}\n" + spend_only(sample, work),
            env={token_env: token},
        )

    return present
