"""The source contract's checks and fixtures (tests/source_contract.py says what they
prove), shared by the test files that run them on each door: file and export sources in
tests/test_source_contract.py, API sources in tests/test_source_contract_api.py. Two files
so that xdist, which runs a test file on one worker, spreads the doors' nights over two.
"""

from __future__ import annotations

import re
from contextlib import ExitStack, contextmanager

import duckdb
import pytest
from source_contract import (
    SOURCE_NAME,
    contract_sources,
    count_records,
    reduced_copy,
    stage_mapping_of,
    write_stage_mapping,
)

from golden_marts import GRAIN

AS_OF = "2026-07-01T00:00:00Z"
CONTRACTS = contract_sources()


def parametrize_doors(metafunc: pytest.Metafunc, door: str) -> None:
    """Run the checks of a test file on every contract source of one door ("file", "api")."""
    if "night" in metafunc.fixturenames:
        names = sorted(name for name, c in CONTRACTS.items() if c.door == door)
        metafunc.parametrize("night", names, indirect=True, scope="module")


def _config(root, sources_yaml, stage_mapping):
    from night.config import load_config

    root.mkdir(parents=True, exist_ok=True)
    (root / "pipeline.yml").write_text(
        "reporting_currency: USD\n"
        f"warehouse: {{path: '{root}/wh.duckdb', publish_dir: '{root}/published'}}\n"
        f"reference: {{stage_mapping: '{stage_mapping}'}}\n"
        f"sources:\n{sources_yaml}"
    )
    return load_config(root / "pipeline.yml")


# Each mart's column names (the same on every path).
_COLUMNS: dict[str, list[str]] = {}


def _marts(config, names):
    con = duckdb.connect(str(config.published_path), read_only=True)
    try:
        out = {}
        for n in names:
            rel = con.sql(f"select * from marts.{n} order by all")
            _COLUMNS[n] = [d[0] for d in rel.description]
            out[n] = rel.fetchall()
        return out
    finally:
        con.close()


_ID_COLUMNS = ("deal_id", "crm_deal_id", "owner_id", "customer_id", "company_id")
# `demo_crm:D0000042`, `D0000042`, and `demo_crm:deal:D0000042` (a customer without company).
_CANONICAL_ID = re.compile(rf"^({SOURCE_NAME}:(?:deal:)?)?([DUC]\d+)$")


def _with_crm_ids(marts, crm_id):
    """Canonical marts with the sample's ids (deals D.., owners U.., companies C..) written
    as the door's CRM gives them (`ContractSource.crm_id`), in the id columns."""
    out = {}
    for name, rows in marts.items():
        at = [i for i, c in enumerate(_COLUMNS[name]) if c in _ID_COLUMNS]
        converted = []
        for row in rows:
            row = list(row)
            for i in at:
                match = _CANONICAL_ID.match(row[i]) if isinstance(row[i], str) else None
                if match:
                    row[i] = (match.group(1) or "") + crm_id(match.group(2))
            converted.append(tuple(row))
        out[name] = sorted(converted, key=lambda r: [(v is None, str(v)) for v in r])
    return out


@contextmanager
def _warehouse(config):
    """A read-only connection to the config's warehouse, in UTC: one for all the queries
    of a check (opening the file again for each costs ~20 ms)."""
    con = duckdb.connect(str(config.warehouse_path), read_only=True)
    try:
        con.execute("set TimeZone = 'UTC'")
        yield con
    finally:
        con.close()


def _raw_tables(con):
    return [
        r[0]
        for r in con.sql(
            """select table_name from information_schema.tables
               where table_schema = 'raw' and table_name not like '\\_%' escape '\\'
               order by 1"""
        ).fetchall()
    ]


def _raw_content(config):
    """Every raw row without its load time and batch id (which a reload may renew), nor,
    for API records, their ordinal in the night (a rerun reads a different window)."""
    out = {}
    with _warehouse(config) as con:
        for table in _raw_tables(con):
            api = con.sql(
                f"""select count(*) from information_schema.columns
                    where table_schema = 'raw' and table_name = '{table}'
                      and column_name = 'record'"""
            ).fetchall()[0][0]
            renewed = "_batch_id, _loaded_at" + (", _row_number" if api else "")
            out[table] = con.sql(
                f"select * exclude ({renewed}) from raw.{table} order by all"
            ).fetchall()
        out["_quarantine"] = con.sql(
            "select * exclude (_batch_id, _loaded_at) from raw._quarantine order by all"
        ).fetchall()
    return out


# The sample and its canonical figures, made once per test process: both test files of
# the contract read the same ones (nothing writes to them), and a worker may run both.
_SHARED: dict[str, object] = {}


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """The generated sample with its awkward deals (devkit.sample_data.AWKWARD_DEALS), and
    beside it the stage mapping that covers their pipelines (stage_mapping_of)."""
    from devkit.sample_data import generate

    if "sample" not in _SHARED:
        folder = tmp_path_factory.mktemp("contract-sample") / "data"
        generate(folder, 250, seed=23, workers=1, awkward=True)
        write_stage_mapping(stage_mapping_of(folder))
        _SHARED["sample"] = folder
    return _SHARED["sample"]


@pytest.fixture(scope="module")
def canonical(sample, tmp_path_factory):
    """The same data through the plain canonical CSV files: the reference figures."""
    from night.tasks import parse_as_of, run_night

    if "canonical" not in _SHARED:
        config = _config(
            tmp_path_factory.mktemp("contract-canonical"),
            f"  - {{name: {SOURCE_NAME}, type: canonical_csv, landing_dir: '{sample}'}}\n",
            stage_mapping_of(sample),
        )
        run_night(as_of=parse_as_of(AS_OF), run_id="canonical", config=config)
        _SHARED["canonical"] = _marts(config, GRAIN)
    return _SHARED["canonical"]


# Each source's nights, built once per test process: pytest may set a parametrized module
# fixture up again when the tests of several parameters interleave (as under xdist).
_NIGHTS: dict[str, tuple] = {}


@pytest.fixture(scope="module")
def night(request, sample, tmp_path_factory):
    """One source type's night on the sample, then the same night run again, as a rerun
    would (a file source's unchanged files add no batch, so its marts are not rebuilt)."""
    if request.param not in _NIGHTS:
        _NIGHTS[request.param] = _two_nights(request.param, sample, tmp_path_factory)
    return _NIGHTS[request.param]


def _two_nights(source_type, sample, tmp_path_factory):
    from night.tasks import parse_as_of, run_night

    contract = CONTRACTS[source_type]
    work = tmp_path_factory.mktemp(f"contract-{source_type}")
    mp = pytest.MonkeyPatch()
    with ExitStack() as stack:
        stack.callback(mp.undo)
        presented = contract.present(sample, work, stack)
        for key, value in presented.env.items():
            mp.setenv(key, value)
        config = _config(work / "night", presented.sources_yaml, stage_mapping_of(sample))
        first = run_night(as_of=parse_as_of(AS_OF), run_id="first", config=config)
        after_first = (_raw_content(config), _marts(config, GRAIN))
        second = run_night(as_of=parse_as_of(AS_OF), run_id="again", config=config)
        after_second = (_raw_content(config), _marts(config, GRAIN))
    return contract, config, first, second, after_first, after_second


# The canonical path's marts on the sample reduced by a door's limits, by limit names.
_REFERENCES: dict[tuple[str, ...], dict] = {}


def _reference(contract, sample, canonical, tmp_path_factory):
    """The canonical marts a door must give: on the sample as its documented limits leave
    it (the plain canonical night when it has none)."""
    from night.tasks import parse_as_of, run_night

    key = tuple(limit.name for limit in contract.limits)
    if not key:
        return canonical
    if key not in _REFERENCES:
        root = tmp_path_factory.mktemp(f"contract-reference-{contract.type}")
        landing = reduced_copy(sample, root / "data", contract.limits)
        config = _config(
            root / "night",
            f"  - {{name: {SOURCE_NAME}, type: canonical_csv, landing_dir: '{landing}'}}\n",
            stage_mapping_of(sample),
        )
        run_night(as_of=parse_as_of(AS_OF), run_id="reference", config=config)
        _REFERENCES[key] = _marts(config, GRAIN)
    return _REFERENCES[key]


def test_figures_equal_the_canonical_path(night, canonical, sample, tmp_path_factory):
    contract, config, first, _, (_, marts), _ = night
    canonical = _reference(contract, sample, canonical, tmp_path_factory)
    if contract.crm_id is not None:  # every mart, ids as the door's CRM gives them
        canonical = _with_crm_ids(canonical, contract.crm_id)
        marts = {
            n: sorted(rows, key=lambda r: [(v is None, str(v)) for v in r])
            for n, rows in marts.items()
        }
    # The sample is clean: nothing of it may be quarantined on any path.
    assert [load["rows_quarantined"] for load in first["loads"]] == [0] * len(first["loads"])
    for name in contract.comparable_marts:
        assert marts[name], f"{contract.type}: {name} is empty"
    differing = [n for n in contract.comparable_marts if marts[n] != canonical[n]]
    assert differing == [], f"{contract.type}: {differing} differ from the canonical path"


def test_reloading_the_night_changes_neither_raw_nor_any_mart(night):
    contract, _, _, _, after_first, after_second = night
    raw_first, marts_first = after_first
    raw_second, marts_second = after_second
    assert any(raw_first.values())
    for table, rows in raw_first.items():
        assert raw_second[table] == rows, f"{contract.type}: raw.{table} changed on reload"
    for name, rows in marts_first.items():
        assert marts_second[name] == rows, f"{contract.type}: {name} changed on reload"


def test_every_batch_holds_what_it_reported(night):
    contract, config, _, _, _, _ = night
    with _warehouse(config) as con:
        batches = con.sql(
            """select batch_id, source_system, raw_table, source_file, rows_loaded,
                      rows_quarantined
               from raw._batches b
               where superseded_by is null
                 -- API tables: only a table's latest merge still holds all of its rows
                 and (source_file not like 'api:%' or batch_id = (
                     select max(batch_id) from raw._batches l
                     where l.source_system = b.source_system and l.raw_table = b.raw_table))"""
        ).fetchall()
        counted = [
            (
                con.sql(
                    f"select count(*) from raw.{table} where _batch_id = {batch_id}"
                ).fetchall()[0][0],
                con.sql(
                    f"select count(*) from raw._quarantine where _batch_id = {batch_id}"
                ).fetchall()[0][0],
            )
            for batch_id, _, table, _, _, _ in batches
        ]
    assert batches
    for batch, in_raw_and_quarantine in zip(batches, counted, strict=True):
        _, source_system, _, source_file, loaded, quarantined = batch
        assert in_raw_and_quarantine == (loaded, quarantined), source_file
        if not source_file.startswith("api:"):  # a file, of any source of the night
            landing = config.source(source_system).settings["landing"]
            path = landing.landing_dir / source_file
            fmt = landing.fmt
            records = count_records(path, fmt.delimiter, fmt.encoding, fmt.quote, fmt.header_line)
            assert loaded + quarantined == records, path


def test_every_raw_row_reaches_staging_or_quarantine(night):
    contract, config, _, _, _, _ = night
    with _warehouse(config) as con:
        keys = [
            (sorted(con.sql(raw_sql).fetchall()), sorted(con.sql(staged_sql).fetchall()))
            for raw_sql, staged_sql in contract.reach
        ]
    for (raw_sql, _), (raw_keys, staged_keys) in zip(contract.reach, keys, strict=True):
        assert raw_keys, raw_sql
        assert raw_keys == staged_keys, f"{contract.type}: {raw_sql}"
