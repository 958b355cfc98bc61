"""`python -m night.check_source` on a Salesforce source, against the fake org over real
HTTP: what it prints (sign-in, API version, org and currency, each query's size, the daily
allowance, a first night's cost), the stage the mapping lacks, its exit code, a refused
token, and that it writes nothing."""

from __future__ import annotations

import csv

import pytest

from devkit.fake_servers.dataset import SampleDataset
from devkit.fake_servers.salesforce import BASE_PATH, build_server
from night.config import DEFAULT_REFERENCE_DIR

TOKEN = "00DPREFLIGHT!AQsfPreflightToken.1732050807"


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    from devkit.sample_data import generate

    folder = tmp_path_factory.mktemp("sf_preflight")
    generate(folder, 40, seed=5, workers=1)
    return folder


@pytest.fixture(autouse=True)
def token_env(monkeypatch):
    monkeypatch.setenv("SALESFORCE_PREFLIGHT_TOKEN", TOKEN)


def _count(folder, name, keep=lambda row: True):
    with open(folder / name, newline="", encoding="utf-8") as f:
        return sum(1 for row in csv.DictReader(f) if keep(row))


def _config(root, url, *, drop=None):
    """A pipeline config whose stage mapping is the default one without the row `drop`."""
    root.mkdir(parents=True, exist_ok=True)
    with open(DEFAULT_REFERENCE_DIR / "stage_mapping.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    kept = [r for r in rows if tuple(r[:3]) != drop]
    assert len(kept) == len(rows) - (drop is not None)
    with open(root / "stage_mapping.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(kept)
    (root / "pipeline.yml").write_text(
        "reporting_currency: USD\n"
        f"warehouse: {{path: {root}/wh.duckdb, publish_dir: {root}/published}}\n"
        f"reference: {{stage_mapping: {root}/stage_mapping.csv}}\n"
        "sources:\n"
        f"  - {{name: demo_crm, type: salesforce, base_url: '{url}', page_size: 200,"
        " token_env: SALESFORCE_PREFLIGHT_TOKEN}\n"
    )
    return root / "pipeline.yml"


def _lines(text):
    return [" ".join(line.split()) for line in text.splitlines()]


def test_preflight_reports_the_org_and_the_stage_the_mapping_lacks(sample, tmp_path, capsys):
    from night.check_source import main

    # GIVEN a single-currency org (EUR) with 100 of its 15,000 daily requests spent, and a
    # stage mapping without Partner's Joint Demo
    with build_server(
        SampleDataset(sample),
        token=TOKEN,
        multi_currency=False,
        corporate_currency="EUR",
        api_used=100,
    ) as server:
        config = _config(tmp_path, server.url, drop=("demo_crm", "Partner", "Joint Demo"))
        # WHEN the preflight runs
        code = main(["demo_crm", "--config", str(config)])
    out = _lines(capsys.readouterr().out)
    history = _count(sample, "deal_stage_history.csv")
    tasks = _count(sample, "activities.csv", lambda r: r["activity_type"] != "meeting")
    events = _count(sample, "activities.csv", lambda r: r["activity_type"] == "meeting")
    # THEN it exits 1 and prints what it found, one fact a line
    assert code == 1
    assert out[0] == "source demo_crm:"
    for fact in (
        "sign-in the access token of environment variable SALESFORCE_PREFLIGHT_TOKEN",
        "API version v66.0 (the org serves up to v66.0)",
        "org Fake Org (00D000000000001AAA)",
        "currencies single currency EUR",
        "Opportunity 40 (40 in the first batch)",
        f"OpportunityHistory {history} ({min(history, 200)} in the first batch)",
        f"Task {tasks} ({min(tasks, 200)} in the first batch)",
        f"Event {events} ({events} in the first batch)",
        "RecordType 3 (3 in the first batch)",
        "Organization 1 (1 in the first batch)",
        "opportunities (COUNT()) 40",
        # 100 + 2 describes + 9 first batches + Organization + COUNT() + 3 picklists
        "API requests left 14,883 of 15,000 in the last 24 hours",
        # 2 describes + 9 queries of one batch each
        "a first night about 11 API requests in batches of 200, 0.1% of the daily allowance",
        "note: Opportunity has no CurrencyIsoCode (multi-currency is off): every amount "
        "counts in the org's corporate currency EUR",
    ):
        assert fact in out, (fact, out)
    assert (history, tasks, events) == (182, 126, 47)  # one batch each at 200
    # AND the one thing to do, in the stage mapping's words
    assert out[-2:] == [
        "1 thing(s) to do before a first night:",
        "- stage 'Joint Demo' of pipeline 'Partner': add a stage_mapping row (source_system "
        "demo_crm)",
    ]
    # AND it asked each record type's sales process for its stages, and wrote nothing
    picklists = [r.path for r in server.requests if "/picklist-values/" in r.path]
    assert picklists == [
        f"{BASE_PATH}/ui-api/object-info/Opportunity/picklist-values/01200000000000{n}AAA/StageName"
        for n in (1, 2, 3)
    ]
    assert not (tmp_path / "wh.duckdb").exists()


def test_preflight_passes_a_ready_org_without_record_types_and_refuses_a_revoked_token(
    sample, tmp_path, capsys, monkeypatch
):
    from night.check_source import main

    with build_server(SampleDataset(sample), token=TOKEN, record_types=False) as server:
        root = tmp_path / "master"
        root.mkdir()
        # Without record types every deal is in pipeline Master: map every stage there.
        (root / "stage_mapping.csv").write_text(
            "source_system,pipeline,crm_stage,funnel_stage,probability\n"
            + "".join(
                f'demo_crm,Master,"{row["crm_stage"]}",{row["funnel_stage"]},0.5\n'
                for row in csv.DictReader(
                    open(DEFAULT_REFERENCE_DIR / "stage_mapping.csv", encoding="utf-8")
                )
                if row["source_system"] == "demo_crm"
            )
        )
        (root / "pipeline.yml").write_text(
            "reporting_currency: USD\n"
            f"warehouse: {{path: {root}/wh.duckdb, publish_dir: {root}/published}}\n"
            f"reference: {{stage_mapping: {root}/stage_mapping.csv}}\n"
            f"sources:\n  - {{name: demo_crm, type: salesforce, base_url: '{server.url}',"
            " token_env: SALESFORCE_PREFLIGHT_TOKEN}\n"
        )
        assert main(["demo_crm", "--config", str(root / "pipeline.yml")]) == 0
        ready = _lines(capsys.readouterr().out)
        monkeypatch.setenv("SALESFORCE_PREFLIGHT_TOKEN", TOKEN + "-revoked")
        assert main(["demo_crm", "--config", str(root / "pipeline.yml")]) == 1
        refused = _lines(capsys.readouterr().out)
    assert ready[-1] == "ready for a first night"
    assert "currencies multi-currency (corporate USD)" in ready
    assert (
        "note: Opportunity has no RecordTypeId (no record types): every deal is in pipeline "
        "'Master'" in ready
    )
    assert refused[-2:] == [
        "1 thing(s) to do before a first night:",
        f'- GET {BASE_PATH}/sobjects/Opportunity/describe failed: HTTP 401: [{{"message": '
        '"Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]; the access token '
        "expired or was revoked (the access token of environment variable "
        "SALESFORCE_PREFLIGHT_TOKEN): put a fresh one there, or set extra.flow in the Airflow "
        "connection so the night signs in itself (docs/setup/salesforce.md), then rerun the "
        "night",
    ]
    assert TOKEN not in " ".join(refused)
