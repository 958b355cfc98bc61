"""The file corpus (tests/corpus/): malformed and localized CSV files through the real loader.

Each corpus file is dropped alone into the landing folder of a canonical_csv source that
declares the file's `format:` (tests/corpus/manifest.yml), and the source's extract task
runs into a fresh DuckDB warehouse. For every file: loaded + quarantined = the records in
the file, counted here with Python's csv module (not the loader's own line scan), each
record accounted for at the line it starts on; the loaded raw values are exactly the
manifest's; a quarantined record has its line and a reason naming the column; a file that
cannot be loaded at all is set aside in _rejected/ with every record quarantined.
"""

from __future__ import annotations

import codecs
import csv
import importlib.util
import io
import shutil
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
import yaml

from conftest import copy_golden_landing, write_golden_config
from extract.sources import canonical_csv
from night.config import PipelineConfig, load_config
from night.tasks import extract_source

CORPUS_DIR = Path(__file__).parent / "corpus"
FILES_DIR = CORPUS_DIR / "files"
ENTRIES = yaml.safe_load((CORPUS_DIR / "manifest.yml").read_text(encoding="utf-8"))["files"]
OBJECTS = {
    "deals": canonical_csv.DEALS,
    "deal_stage_history": canonical_csv.STAGE_HISTORY,
    "activities": canonical_csv.ACTIVITIES,
    "spend": canonical_csv.SPEND,
}
AS_OF = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
DAY = "2026-11-27"
SOURCE = "corpus"


def write_config(root: Path, fmt: dict | None) -> PipelineConfig:
    """A pipeline config with one archiving canonical_csv source declaring `fmt`."""
    source = {"name": SOURCE, "type": "canonical_csv", "landing_dir": "landing", "archive": True}
    if fmt is not None:
        source["format"] = fmt
    config = {
        "reporting_currency": "EUR",
        "warehouse": {"path": "wh.duckdb", "publish_dir": "published"},
        "sources": [source],
    }
    path = root / "pipeline.yml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return load_config(path)


def record_lines(path: Path, fmt: dict | None) -> list[int]:
    """The line each data record starts on (header = line 1), read with Python's csv module
    under the declared delimiter, quote and encoding; blank lines are no records."""
    fmt = fmt or {}
    delimiter = fmt.get("delimiter", ",")
    delimiter = "\t" if delimiter == "tab" else delimiter
    encoding = codecs.lookup(fmt.get("encoding", "utf-8")).name
    encoding = "utf-8-sig" if encoding == "utf-8" else encoding
    text = path.read_bytes().decode(encoding, errors="replace")
    reader = csv.reader(
        io.StringIO(text, newline=""), delimiter=delimiter, quotechar=fmt.get("quote", '"')
    )
    if next(reader, None) is None:
        return []
    starts, end_of_previous = [], reader.line_num
    for record in reader:
        if record:
            starts.append(end_of_previous + 1)
        end_of_previous = reader.line_num
    return starts


def test_corpus_has_every_file_once_and_the_fixtures_are_what_the_script_writes():
    # The committed files are fixtures: the generator, rerun in memory, gives the same bytes.
    spec = importlib.util.spec_from_file_location("make_corpus", CORPUS_DIR / "make_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    generated = module.corpus()
    on_disk = {p.name: p.read_bytes() for p in FILES_DIR.glob("*.csv")}
    assert on_disk == generated
    assert sorted(e["file"] for e in ENTRIES) == sorted(on_disk)
    assert len(on_disk) >= 24
    for entry in ENTRIES:
        assert canonical_csv.object_for(Path(entry["file"])) is OBJECTS[entry["object"]]


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["file"].removesuffix(".csv") for e in ENTRIES])
def test_corpus_file(entry: dict, tmp_path: Path):
    # GIVEN the corpus file alone in the landing folder of a source declaring its format
    name, obj = entry["file"], OBJECTS[entry["object"]]
    landing = tmp_path / "landing"
    landing.mkdir()
    shutil.copyfile(FILES_DIR / name, landing / name)
    config = write_config(tmp_path, entry.get("format"))
    records = record_lines(FILES_DIR / name, entry.get("format"))
    assert len(records) == entry["records"], "the manifest's record count"

    # WHEN the source's extract task runs
    summary = extract_source(SOURCE, as_of=AS_OF, config=config)

    # THEN every record is loaded or quarantined, once, at the line it starts on
    con = duckdb.connect(str(config.warehouse_path), read_only=True)
    try:
        cols = ", ".join(f'"{c}"' for c in obj.columns)
        loaded = con.execute(
            f"select _row_number, {cols} from {obj.qualified} order by _row_number"
        ).fetchall()
        quarantined = con.execute(
            """select line_number, reason from raw._quarantine
               where _source_file = ? and raw_table = ? order by line_number""",
            [f"{DAY}/{name}", obj.table],
        ).fetchall()
        batches = con.execute(
            "select source_file, rows_loaded, rows_quarantined from raw._batches"
        ).fetchall()
    finally:
        con.close()
    assert sorted([r[0] for r in loaded] + [q[0] for q in quarantined]) == records
    assert len(loaded) + len(quarantined) == entry["records"]
    assert batches == [(f"{DAY}/{name}", len(loaded), len(quarantined))]
    assert (summary["rows_loaded"], summary["rows_quarantined"]) == (len(loaded), len(quarantined))

    if entry["outcome"] == "rejected":
        # ... a file that cannot be loaded is set aside with its reason, records quarantined
        assert loaded == []
        assert summary["files_loaded"] == 0
        assert [r.split(": ", 1)[0] for r in summary["rejected_files"]] == [name]
        assert entry["reason"] in summary["rejected_files"][0]
        for _, reason in quarantined:
            assert reason.startswith("file rejected: ") and entry["reason"] in reason
            assert entry.get("reason_also", "") in reason
        set_aside = landing / "_rejected" / DAY / name
        assert set_aside.read_bytes() == (FILES_DIR / name).read_bytes()
        reason_file = set_aside.with_name(name + ".reason.txt").read_text()
        assert entry["reason"] in reason_file
        return

    assert entry["outcome"] == "loaded"
    assert summary["rejected_files"] == [] and summary["files_loaded"] == 1
    # ... the loaded values are exactly the manifest's, NULL where it lists none
    expected = [
        (row["line"], *(row.get(c) for c in obj.columns)) for row in entry.get("loaded", [])
    ]
    assert loaded == expected
    # ... each quarantined record has its line and a reason naming the column
    wanted = entry.get("quarantined", [])
    assert [q[0] for q in quarantined] == [w["line"] for w in wanted]
    for (line, reason), want in zip(quarantined, wanted, strict=True):
        assert want["reason"] in reason, f"line {line}: {reason}"
        if "column" in want:
            assert reason.startswith(obj.label(want["column"]) + " "), f"line {line}: {reason}"
    # ... and the file, kept as delivered, is archived under the night's date
    archived = landing / "_archive" / DAY / name
    assert archived.read_bytes() == (FILES_DIR / name).read_bytes()
    assert not (landing / name).exists()


def test_unknown_stage_loads_into_raw_then_fails_the_build_naming_it(tmp_path, golden_as_of):
    # GIVEN the golden landing folder plus the corpus file whose deal is in `Legal Review`,
    # a stage the mapping does not know (the corpus test shows it loads into raw)
    from night.tasks import run_night
    from night.transform import DbtError

    landing = copy_golden_landing(tmp_path / "landing")
    shutil.copyfile(FILES_DIR / "deals__unknown_stage.csv", landing / "deals__unknown_stage.csv")
    config = load_config(write_golden_config(tmp_path / "night", landing=landing))
    # WHEN the night runs THEN dbt fails naming source, pipeline and stage, and nothing is
    # published
    with pytest.raises(DbtError) as failure:
        run_night(as_of=golden_as_of, run_id="corpus-unknown-stage", config=config)
    message = str(failure.value)
    assert "Unmapped CRM stage(s)" in message
    assert "source_system=golden, pipeline=direct, crm_stage=Legal Review" in message
    assert not config.published_path.exists()
