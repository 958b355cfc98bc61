"""The sample-data generator writes deterministic, self-consistent canonical CSV files that the
demo reference data (config/reference/: stage mapping, channels, fx) fully covers."""

from __future__ import annotations

import csv
import re
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path

import pytest

from devkit import sample_data
from devkit.sample_data import generate

DEMO_REFERENCE = Path(__file__).resolve().parents[2] / "config" / "reference"
N_DEALS = 2_000
START = date(2024, 1, 1)
END = date(2026, 6, 30)
FILES = ("deals.csv", "deal_stage_history.csv", "activities.csv", "spend.csv")

# The canonical format of ARCHITECTURE.md, spelled out here so a change of the constants in
# the generator cannot silently change the contract.
CANONICAL_HEADERS = {
    "deals.csv": "deal_id,deal_name,pipeline,stage,status,amount,currency,owner_id,owner_name,"
    "company_id,lead_source,created_at,closed_at,updated_at",
    "deal_stage_history.csv": "deal_id,stage,changed_at",
    "activities.csv": "activity_id,deal_id,activity_type,occurred_at,owner_id",
    "spend.csv": "date,channel,category,amount,currency",
}
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
AMOUNT = re.compile(r"^\d+\.\d{2}$")
FIRST_TS = "2024-01-01T00:00:00Z"
LAST_TS = "2026-06-30T23:59:59Z"  # ISO-8601 UTC strings of one width compare like instants


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def file_bytes(out: Path) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in FILES}


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sample")
    generate(path, N_DEALS, seed=7, start=START, end=END, workers=1)
    return path


@pytest.fixture(scope="module")
def data(out: Path) -> dict[str, list[dict[str, str]]]:
    return {name: read_rows(out / name) for name in FILES}


@pytest.fixture(scope="module")
def history_by_deal(data: dict[str, list[dict[str, str]]]) -> dict[str, list[dict[str, str]]]:
    by_deal: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in data["deal_stage_history.csv"]:
        by_deal[row["deal_id"]].append(row)
    return by_deal


@pytest.fixture(scope="module")
def stage_mapping() -> dict[tuple[str, str], tuple[str, float]]:
    rows = read_rows(DEMO_REFERENCE / "stage_mapping.csv")
    assert {r["source_system"] for r in rows} == {"demo_crm"}
    mapping = {
        (r["pipeline"], r["crm_stage"]): (r["funnel_stage"], float(r["probability"])) for r in rows
    }
    assert len(mapping) == len(rows), "duplicate (pipeline, crm_stage) in stage_mapping.csv"
    return mapping


@pytest.fixture(scope="module")
def funnel_order() -> dict[str, int]:
    return {
        r["funnel_stage"]: int(r["stage_order"])
        for r in read_rows(DEMO_REFERENCE / "funnel_stages.csv")
    }


def funnel_path(
    changes: list[dict[str, str]],
    pipeline: str,
    stage_mapping: dict[tuple[str, str], tuple[str, float]],
    funnel_order: dict[str, int],
) -> list[int]:
    """Funnel stage orders of a deal's changes, 0 for lost."""
    orders = []
    for c in changes:
        funnel_stage = stage_mapping[(pipeline, c["stage"])][0]
        orders.append(0 if funnel_stage == "lost" else funnel_order[funnel_stage])
    return orders


def test_same_seed_gives_identical_bytes(out: Path, tmp_path: Path) -> None:
    counts = generate(tmp_path, N_DEALS, seed=7, start=START, end=END, workers=1)

    assert file_bytes(tmp_path) == file_bytes(out)
    assert counts["deals.csv"] == N_DEALS


def test_different_seed_gives_different_data(out: Path, tmp_path: Path) -> None:
    generate(tmp_path, N_DEALS, seed=8, start=START, end=END, workers=1)

    again, first = file_bytes(tmp_path), file_bytes(out)
    for name in FILES:
        assert again[name] != first[name], name


def test_worker_processes_do_not_change_the_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN blocks small enough that 1,200 deals make three blocks
    monkeypatch.setattr(sample_data, "_BLOCK_DEALS", 500)

    # WHEN the same data is generated in one process and in two worker processes
    one = generate(tmp_path / "one", 1_200, seed=3, workers=1)
    two = generate(tmp_path / "two", 1_200, seed=3, workers=2)

    # THEN the files are identical
    assert one == two
    assert file_bytes(tmp_path / "one") == file_bytes(tmp_path / "two")


def test_returned_counts_are_the_data_rows_of_each_file(out: Path, tmp_path: Path) -> None:
    counts = generate(tmp_path, 300, seed=11, start=START, end=END, workers=1)

    for name in FILES:
        with (tmp_path / name).open(encoding="utf-8", newline="") as f:
            assert counts[name] == sum(1 for _ in csv.reader(f)) - 1, name


def test_headers_are_the_canonical_columns_in_order(out: Path) -> None:
    for name, header in CANONICAL_HEADERS.items():
        first_line = (out / name).read_bytes().split(b"\n", 1)[0]
        assert first_line == header.encode("utf-8"), name
        assert sample_data.FILE_COLUMNS[name] == tuple(header.split(","))


def test_values_use_the_canonical_formats(data: dict[str, list[dict[str, str]]]) -> None:
    for d in data["deals.csv"]:
        assert d["status"] in {"open", "won", "lost"}
        assert d["currency"] in {"USD", "EUR", "GBP"}
        assert d["amount"] == "" or AMOUNT.match(d["amount"]), d
        assert TIMESTAMP.match(d["created_at"]) and TIMESTAMP.match(d["updated_at"]), d
        assert d["closed_at"] == "" or TIMESTAMP.match(d["closed_at"]), d
        assert d["deal_id"] and d["owner_id"] and d["owner_name"] and d["pipeline"], d
    for c in data["deal_stage_history.csv"]:
        assert TIMESTAMP.match(c["changed_at"]), c
    for a in data["activities.csv"]:
        assert a["activity_type"] in {"call", "email", "meeting"}
        assert TIMESTAMP.match(a["occurred_at"]), a
    for s in data["spend.csv"]:
        assert DATE.match(s["date"]) and AMOUNT.match(s["amount"]), s
        assert s["category"] in {"marketing", "sales"}
        assert s["currency"] in {"USD", "EUR", "GBP"}
        assert s["channel"] or s["category"] == "sales", s


def test_ids_are_unique_and_activities_point_at_deals(
    data: dict[str, list[dict[str, str]]],
) -> None:
    deal_ids = [d["deal_id"] for d in data["deals.csv"]]
    activity_ids = [a["activity_id"] for a in data["activities.csv"]]

    assert len(set(deal_ids)) == N_DEALS
    assert len(set(activity_ids)) == len(activity_ids)
    assert {a["deal_id"] for a in data["activities.csv"]} <= set(deal_ids)
    history_deals = {c["deal_id"] for c in data["deal_stage_history.csv"]}
    assert history_deals == set(deal_ids), "every deal has a stage history"


def test_stage_history_agrees_with_each_deal(
    data: dict[str, list[dict[str, str]]],
    history_by_deal: dict[str, list[dict[str, str]]],
) -> None:
    pipelines = {p.name: p for p in sample_data.PIPELINES}
    for d in data["deals.csv"]:
        changes = history_by_deal[d["deal_id"]]
        times = [c["changed_at"] for c in changes]
        pipeline = pipelines[d["pipeline"]]
        open_names = {s.name for s in pipeline.stages}
        last = changes[-1]

        assert times == sorted(set(times)), f"{d['deal_id']}: changes not strictly increasing"
        assert times[0] == d["created_at"], d["deal_id"]
        assert d["stage"] == last["stage"], d["deal_id"]
        assert d["updated_at"] >= last["changed_at"], d["deal_id"]
        # only the last change may close the deal; every other one is an open stage
        assert all(c["stage"] in open_names for c in changes[:-1]), d["deal_id"]
        if d["status"] == "won":
            assert (last["stage"], last["changed_at"]) == (pipeline.won_stage, d["closed_at"])
        elif d["status"] == "lost":
            assert (last["stage"], last["changed_at"]) == (pipeline.lost_stage, d["closed_at"])
        else:
            assert d["closed_at"] == "", d["deal_id"]
            assert last["stage"] in open_names, d["deal_id"]


def test_no_event_lies_outside_start_and_end(data: dict[str, list[dict[str, str]]]) -> None:
    stamps = [
        v
        for d in data["deals.csv"]
        for k in ("created_at", "closed_at", "updated_at")
        if (v := d[k])
    ]
    stamps += [c["changed_at"] for c in data["deal_stage_history.csv"]]
    stamps += [a["occurred_at"] for a in data["activities.csv"]]
    spend_dates = [s["date"] for s in data["spend.csv"]]

    assert FIRST_TS <= min(stamps) and max(stamps) <= LAST_TS
    assert min(spend_dates) == START.isoformat() and max(spend_dates) == END.isoformat()


def test_a_short_period_starting_mid_month_keeps_every_event_inside_it(tmp_path: Path) -> None:
    generate(tmp_path, 300, seed=5, start=date(2025, 3, 15), end=date(2025, 4, 10), workers=1)

    deals = read_rows(tmp_path / "deals.csv")
    stamps = [v for d in deals for v in (d["created_at"], d["closed_at"], d["updated_at"]) if v]
    stamps += [c["changed_at"] for c in read_rows(tmp_path / "deal_stage_history.csv")]
    stamps += [a["occurred_at"] for a in read_rows(tmp_path / "activities.csv")]
    spend = read_rows(tmp_path / "spend.csv")

    assert "2025-03-15T00:00:00Z" <= min(stamps) and max(stamps) <= "2025-04-10T23:59:59Z"
    assert {s["date"] for s in spend if s["category"] == "sales"} == {"2025-03-15", "2025-04-01"}


def test_activities_happen_after_their_deal_was_created(
    data: dict[str, list[dict[str, str]]],
) -> None:
    created = {d["deal_id"]: d["created_at"] for d in data["deals.csv"]}

    assert all(a["occurred_at"] >= created[a["deal_id"]] for a in data["activities.csv"])


def test_funnel_stages_seed_is_the_metric_contract_funnel() -> None:
    rows = read_rows(DEMO_REFERENCE / "funnel_stages.csv")

    assert [(int(r["stage_order"]), r["funnel_stage"]) for r in rows] == [
        (1, "prospecting"),
        (2, "lead_generation"),
        (3, "first_contact"),
        (4, "needs_assessment"),
        (5, "solution_presentation"),
        (6, "proposal"),
        (7, "negotiation"),
        (8, "closed_won"),
    ]
    assert all(r["description"] for r in rows)


def test_stage_mapping_seed_maps_every_stage_the_generator_knows(
    stage_mapping: dict[tuple[str, str], tuple[str, float]],
    funnel_order: dict[str, int],
) -> None:
    expected = {
        (p.name, crm_stage): (funnel_stage, probability)
        for p in sample_data.PIPELINES
        for crm_stage, funnel_stage, probability in p.stage_mapping()
    }

    assert stage_mapping == expected
    assert len(sample_data.PIPELINES) >= 3
    for (_pipeline, crm_stage), (funnel_stage, probability) in stage_mapping.items():
        assert funnel_stage in funnel_order or funnel_stage == "lost", crm_stage
        assert 0.0 <= probability <= 1.0
        if funnel_stage == "closed_won":
            assert probability == 1.0
        if funnel_stage == "lost":
            assert probability == 0.0
    # each pipeline has its own won and lost stage names
    won = [p.won_stage for p in sample_data.PIPELINES]
    lost = [p.lost_stage for p in sample_data.PIPELINES]
    assert len(set(won)) == len(won) and len(set(lost)) == len(lost)


def test_every_generated_pipeline_stage_is_in_the_stage_mapping(
    data: dict[str, list[dict[str, str]]],
    stage_mapping: dict[tuple[str, str], tuple[str, float]],
) -> None:
    pipeline_of = {d["deal_id"]: d["pipeline"] for d in data["deals.csv"]}
    seen = {(d["pipeline"], d["stage"]) for d in data["deals.csv"]}
    seen |= {(pipeline_of[c["deal_id"]], c["stage"]) for c in data["deal_stage_history.csv"]}

    assert seen <= set(stage_mapping)
    assert len({pipeline for pipeline, _ in seen}) >= 3


def test_spend_channels_and_lead_sources_match_the_channel_mapping(
    data: dict[str, list[dict[str, str]]],
) -> None:
    rows = read_rows(DEMO_REFERENCE / "channel_mapping.csv")
    mapping = {r["lead_source"].strip().lower(): r["channel"] for r in rows}
    channels = set(mapping.values())

    spend_channels = {s["channel"] for s in data["spend.csv"] if s["channel"]}
    assert spend_channels <= channels
    assert spend_channels == set(sample_data.SPEND_CHANNELS)
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", c) for c in channels)
    for lead_source, channel in sample_data.LEAD_SOURCE_CHANNELS.items():
        assert mapping.get(lead_source.strip().lower()) == channel, lead_source
    generated = {d["lead_source"] for d in data["deals.csv"]}
    unmapped = {s for s in generated if s.strip().lower() not in mapping}
    assert generated <= set(sample_data.LEAD_SOURCE_CHANNELS)
    assert "" in unmapped and len(unmapped - {""}) >= 1, "an unmapped lead source on purpose"


def test_every_currency_has_an_fx_rate_for_its_month(
    data: dict[str, list[dict[str, str]]],
) -> None:
    rates = {(r["month"], r["currency"]) for r in read_rows(DEMO_REFERENCE / "fx_rates.csv")}

    needed = {
        ((d["closed_at"] or d["created_at"])[:7] + "-01", d["currency"]) for d in data["deals.csv"]
    }
    needed |= {(s["date"][:7] + "-01", s["currency"]) for s in data["spend.csv"]}
    missing = {(m, c) for m, c in needed if c != "USD" and (m, c) not in rates}

    assert not missing


def test_fx_seed_has_eur_and_gbp_for_every_month_2020_to_2027() -> None:
    rows = read_rows(DEMO_REFERENCE / "fx_rates.csv")
    months = [f"{y}-{m:02d}-01" for y in range(2020, 2028) for m in range(1, 13)]

    assert sorted((r["month"], r["currency"]) for r in rows) == sorted(
        (m, c) for m in months for c in ("EUR", "GBP")
    )
    for r in rows:
        assert re.fullmatch(r"\d\.\d{4,6}", r["rate_to_reporting"]), r
        assert 0.8 < float(r["rate_to_reporting"]) < 1.6, r
    eur = [float(r["rate_to_reporting"]) for r in rows if r["currency"] == "EUR"]
    assert len(set(eur)) > 90, "rates vary month to month"


def test_the_awkward_cases_are_all_present(
    data: dict[str, list[dict[str, str]]],
    history_by_deal: dict[str, list[dict[str, str]]],
    stage_mapping: dict[tuple[str, str], tuple[str, float]],
    funnel_order: dict[str, int],
) -> None:
    deals = data["deals.csv"]
    skipped = regressed = 0
    lost_at: Counter[int] = Counter()
    for d in deals:
        path = funnel_path(
            history_by_deal[d["deal_id"]], d["pipeline"], stage_mapping, funnel_order
        )
        open_path = [o for o in path if o]
        steps = list(zip(open_path, open_path[1:], strict=False))
        skipped += any(b > a + 1 for a, b in steps)
        regressed += any(b < a for a, b in steps)
        if d["status"] == "lost":
            lost_at[path[-2]] += 1
    companies = Counter(d["company_id"] for d in deals)
    closed_at = {d["deal_id"]: d["closed_at"] for d in deals if d["closed_at"]}
    after_close = [
        a
        for a in data["activities.csv"]
        if a["deal_id"] in closed_at and a["occurred_at"] > closed_at[a["deal_id"]]
    ]
    statuses = Counter(d["status"] for d in deals)

    assert skipped > 0, "a deal skips a funnel stage"
    assert regressed > 0, "a deal goes back to an earlier funnel stage"
    assert set(lost_at) == set(range(1, 8)), f"lost at every open funnel stage: {lost_at}"
    assert statuses["open"] > 0 and statuses["won"] > 0 and statuses["lost"] > 0
    assert len({d["currency"] for d in deals}) >= 3
    assert companies[""] > 0, "deals without a company"
    assert any(n > 1 for c, n in companies.items() if c), "repeat customers"
    assert after_close, "activities after the close"
    assert any(d["amount"] == "" for d in deals), "deals without an amount"
    assert 20 <= len({d["owner_id"] for d in deals}) <= 50
    assert any(not d["owner_name"].isascii() for d in deals), "non-ASCII names survive UTF-8"
    assert any("," in d["deal_name"] or '"' in d["deal_name"] for d in deals), "quoted fields"


def test_more_recent_deals_are_more_often_open(data: dict[str, list[dict[str, str]]]) -> None:
    def open_share(rows: list[dict[str, str]]) -> float:
        return sum(d["status"] == "open" for d in rows) / len(rows)

    first_year = [d for d in data["deals.csv"] if d["created_at"] < "2025-01-01"]
    last_half = [d for d in data["deals.csv"] if d["created_at"] >= "2026-01-01"]

    assert open_share(last_half) > 2 * open_share(first_year)


def test_end_before_start_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="before start"):
        generate(tmp_path, 10, start=date(2025, 1, 2), end=date(2025, 1, 1))


def test_awkward_deals_are_appended_after_the_unchanged_default_output(tmp_path: Path) -> None:
    # GIVEN the same sample generated without and with the awkward deals
    plain = generate(tmp_path / "plain", 300, seed=7, workers=1)
    awkward = generate(tmp_path / "awkward", 300, seed=7, workers=1, awkward=True)
    deals = sample_data.AWKWARD_DEALS
    # THEN the awkward files are the plain ones plus the awkward rows at the end
    extra = {
        "deals.csv": len(deals),
        "deal_stage_history.csv": sum(len(d.history) for d in deals),
        "activities.csv": sum(len(d.activities) for d in deals),
        "spend.csv": 0,
    }
    assert awkward == {name: n + extra[name] for name, n in plain.items()}
    assert extra == {
        "deals.csv": 9,
        "deal_stage_history.csv": 33,
        "activities.csv": 5,
        "spend.csv": 0,
    }
    for name in ("deals.csv", "deal_stage_history.csv", "activities.csv", "spend.csv"):
        before = (tmp_path / "plain" / name).read_bytes()
        assert (tmp_path / "awkward" / name).read_bytes().startswith(before), name
    # AND every awkward stage is in the awkward stage mapping, under its deal's pipeline
    mapped = {(p, s) for _, p, s, _, _ in sample_data.awkward_stage_mapping()}
    for d in deals:
        assert {(d.row[2], d.row[3])} | {(d.row[2], s) for s, _ in d.history} <= mapped
