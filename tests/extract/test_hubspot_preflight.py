"""`python -m night.check_source` on a HubSpot source, against the fake server over real HTTP:
what it prints (token, account, pipelines, counts, budget, a first night's cost), the
problems that block a first night (a missing scope, an unmapped stage, a stage deleted
from its pipeline that stage history still names by id), its exit code, and that it
writes nothing."""

from __future__ import annotations

import csv

import pytest

from devkit.fake_servers.dataset import SampleDataset
from devkit.fake_servers.hubspot import RateLimits, StageCatalog, build_server
from night.config import DEFAULT_REFERENCE_DIR

TOKEN = "hs-preflight-token-1414213562"
ALL_BUT_OWNERS = [
    "crm.objects.deals.read",
    "crm.objects.companies.read",
    "crm.objects.contacts.read",
]


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    from devkit.sample_data import generate

    folder = tmp_path_factory.mktemp("hs_preflight")
    generate(folder, 40, seed=5, workers=1)
    return folder


@pytest.fixture(autouse=True)
def token_env(monkeypatch):
    monkeypatch.setenv("HUBSPOT_PREFLIGHT_TOKEN", TOKEN)


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
        f"  - {{name: demo_crm, type: hubspot, base_url: '{url}',"
        " token_env: HUBSPOT_PREFLIGHT_TOKEN}\n"
    )
    return root / "pipeline.yml"


def _lines(text):
    return [" ".join(line.split()) for line in text.splitlines()]


def test_preflight_reports_what_blocks_a_first_night(sample, tmp_path, capsys):
    from night.check_source import main

    # GIVEN a private app without the owners scope, a stage the mapping lacks (Partner's
    # Joint Demo) and a stage deleted from its pipeline (Expansion's Quote, empty now, two
    # entries of stage history still name it), on a Professional account's budget
    quote = StageCatalog().stage("Expansion", "Quote").id
    with build_server(
        SampleDataset(sample),
        token=TOKEN,
        rate_limits=RateLimits(),
        scopes=ALL_BUT_OWNERS,
        deleted_stages=[("Expansion", "Quote")],
        time_zone="Europe/Berlin",
    ) as server:
        config = _config(tmp_path, server.url, drop=("demo_crm", "Partner", "Joint Demo"))
        # WHEN the preflight runs
        code = main(["demo_crm", "--config", str(config)])
    out = _lines(capsys.readouterr().out)
    # THEN it exits 1 and prints what it found, one fact a line
    assert code == 1
    assert out[0] == "source demo_crm:"
    for fact in (
        "token private app 3141592 of HubSpot account 24681357",
        "account 24681357 (STANDARD), time zone Europe/Berlin, company currency USD",
        "pipelines New Business (11 stages), Expansion (8 stages), Partner (10 stages)",
        "deals (search total) 40",
        "calls 39",
        "emails 87",
        "meetings 47",
        # 17 requests; the last with rate headers (search has none) was the 16th
        "daily API budget 649,984 of 650,000 requests left; resets at midnight, account "
        "time (Europe/Berlin)",
        "burst limit 190 requests per 10 s",
        # pipelines 1, owners 2, deals 1 + archived 1, activities (1 + archived 1) x 3
        "a first night about 11 requests (<0.1% of the daily limit), at least 10 s at the "
        "burst limit",
    ):
        assert f"  {fact}".strip() in out, fact
    # AND the three things to do, each naming what to add
    assert out[-4:] == [
        "3 thing(s) to do before a first night:",
        "- the token lacks scope crm.objects.owners.read (owners (rep performance)): add it "
        "to the private app's scopes (Development > Legacy apps > the app > Scopes), or to "
        "the service key's",
        "- stage 'Joint Demo' of pipeline 'Partner': add a stage_mapping row (source_system "
        "demo_crm)",
        f"- stage '{quote}' of pipeline 'Expansion' (deleted from the pipeline, still in stage "
        "history): add a stage_mapping row (source_system demo_crm)",
    ]
    # AND it read one page of each endpoint but the owners (the token lacks their scope)
    paths = [(r.method, r.path) for r in server.requests]
    assert len(paths) == 17 and ("GET", "/crm/v3/owners") not in paths
    assert not (tmp_path / "wh.duckdb").exists()  # wrote nothing


def test_preflight_passes_a_ready_source_and_refuses_a_wrong_token(
    sample, tmp_path, capsys, monkeypatch
):
    from night.check_source import main

    with build_server(SampleDataset(sample), token=TOKEN) as server:
        config = _config(tmp_path, server.url)
        assert main(["demo_crm", "--config", str(config)]) == 0
        ready = _lines(capsys.readouterr().out)
        # A token HubSpot does not know: the one line names the source and the request.
        monkeypatch.setenv("HUBSPOT_PREFLIGHT_TOKEN", TOKEN + "-revoked")
        assert main(["demo_crm", "--config", str(config)]) == 1
        refused = capsys.readouterr()
    assert ready[-1] == "ready for a first night"
    assert "owners 36" in ready
    # No rate headers without a budget (the fake's default): said, not guessed.
    assert "note: HubSpot sent no X-HubSpot-RateLimit-* headers" in ready
    assert refused.out == ""
    assert refused.err == (
        "demo_crm: GET /account-info/v3/details failed: HTTP 401 INVALID_AUTHENTICATION: "
        "HubSpot refused the token of source 'demo_crm' (revoked, rotated or mistyped): store "
        "the private app's current access token in the environment variable "
        "HUBSPOT_PREFLIGHT_TOKEN and rerun\n"
    )
    assert TOKEN not in refused.err
