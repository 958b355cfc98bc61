"""`python -m night.check_source` on a Pipedrive source, against the fake server over real
HTTP: what it prints (whose token, pipelines, one page of each endpoint, the deal count,
the daily token budget left, a first night's tokens and nights), what blocks a first night
(an unmapped stage, a spent budget, a wrong token), its exit code, and that it writes
nothing."""

from __future__ import annotations

import csv

import pytest

from devkit.fake_servers.dataset import SampleDataset
from devkit.fake_servers.pipedrive import Account, RateLimits, TokenUser, build_server
from night.config import DEFAULT_REFERENCE_DIR

TOKEN = "pd-preflight-token-1732050807"
# Deals closed before 2026 are archived: served by /api/v2/deals/archived only.
ARCHIVING = Account(archive_closed_before="2026-01-01T00:00:00Z")


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    from devkit.sample_data import generate

    folder = tmp_path_factory.mktemp("pd_preflight")
    generate(folder, 40, seed=5, workers=1)
    return folder


@pytest.fixture(autouse=True)
def token_env(monkeypatch):
    monkeypatch.setenv("PIPEDRIVE_PREFLIGHT_TOKEN", TOKEN)


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
        f"  - {{name: demo_crm, type: pipedrive, base_url: '{url}',"
        " token_env: PIPEDRIVE_PREFLIGHT_TOKEN}\n"
    )
    return root / "pipeline.yml"


def _lines(text):
    return [" ".join(line.split()) for line in text.splitlines()]


def test_preflight_reports_the_account_its_cost_and_what_blocks_a_first_night(
    sample, tmp_path, capsys
):
    from night.check_source import main

    # GIVEN a non-admin's token on a Lite company of one seat (30,000 tokens a day), deals
    # closed before 2026 archived, and a stage the mapping lacks (Expansion's Quote)
    limits = RateLimits()
    with build_server(
        SampleDataset(sample),
        token=TOKEN,
        account=ARCHIVING,
        rate_limits=limits,
        token_user=TokenUser(user_id=1005, is_admin=False),
    ) as server:
        config = _config(tmp_path, server.url, drop=("demo_crm", "Expansion", "Quote"))
        # WHEN the preflight runs
        code = main(["demo_crm", "--config", str(config)])
    out = _lines(capsys.readouterr().out)
    # THEN it exits 1 and prints what it found, one fact a line
    assert code == 1
    assert out[0] == "source demo_crm:"
    facts = out[1 : out.index("1 thing(s) to do before a first night:")]
    assert facts == [
        "token user Sophia Martinez (user1005@example.com, id 1005), not an admin, of company "
        "Demo Company (demo-company.pipedrive.com, id 7000001)",
        "pipelines New Business (11 stages), Expansion (9 stages), Partner (10 stages)",
        "users 25",
        "lead sources (channel options) 10",
        "deals, first page 8",  # 32 of the 40 are archived
        "archived deals some (read on every night)",
        "deleted deals (last 30 days) none",
        "deal 32's flow 3 changes",
        "deals (summary total) 40",
        "activities, first page 173",
        # users/me 2, pipelines 5, stages 5, users 20, deal fields 10, deals 3 x 10, a flow
        # 40, the summary 40, activities 10: 162 tokens
        "daily token budget 29,838 of 30,000 tokens left; resets at midnight, Pipedrive's "
        "server time",
        "burst limit 20 requests per 2 s",
        # lookups 4 requests (40 tokens); deals 1 page + archived 1 + deleted 1 (30); an
        # activities page (10); 40 flows (1,600): 48 requests, 1,680 tokens
        "a first night about 48 requests and 1,680 tokens (+10 tokens per 500 activities); "
        "1 night(s) at 30,000 tokens a day, 1 on the smallest plan (30,000 a day); at least "
        "6 s at the burst limit",
        "note: the token's user is not an admin: a night reads only the deals, activities and "
        "users this user may see (their visibility groups and permission set); use an "
        "admin's API token to read the whole company",
    ]
    assert out[-1] == (
        "- stage 'Quote' of pipeline 'Expansion': add a stage_mapping row (source_system demo_crm)"
    )
    # AND it read one page of each endpoint, 11 requests, and wrote nothing
    assert limits.requests_served == len(server.requests) == 11
    assert limits.used_today == 162
    assert not (tmp_path / "wh.duckdb").exists()


def test_preflight_passes_a_ready_source_and_refuses_a_wrong_token(
    sample, tmp_path, capsys, monkeypatch
):
    from night.check_source import main

    with build_server(SampleDataset(sample), token=TOKEN) as server:
        config = _config(tmp_path, server.url)
        assert main(["demo_crm", "--config", str(config)]) == 0
        ready = _lines(capsys.readouterr().out)
        # A token Pipedrive does not know: the one line names the source and the request.
        monkeypatch.setenv("PIPEDRIVE_PREFLIGHT_TOKEN", TOKEN + "-regenerated")
        assert main(["demo_crm", "--config", str(config)]) == 1
        refused = capsys.readouterr()
    assert ready[-1] == "ready for a first night"
    assert ready[1].startswith("token user Emily Carter (user1001@example.com, id 1001), an admin")
    assert "deals (summary total) 40" in ready
    # No rate headers without a budget (the fake's default): said, not guessed; the first
    # night's nights counted on the smallest plan only
    assert "note: Pipedrive sent no x-ratelimit / x-daily-ratelimit headers" in ready
    assert (
        "a first night about 48 requests and 1,680 tokens (+10 tokens per 500 activities), 1 on "
        "the smallest plan (30,000 a day); at least 6 s at the burst limit"
    ) in ready
    assert refused.out == ""
    assert refused.err == (
        "demo_crm: GET /v1/users/me failed: HTTP 401 unauthorized access: Pipedrive refused "
        "the API token of source 'demo_crm' (regenerated, its user deactivated, or "
        "mistyped): store the user's current personal API token (Personal preferences > "
        "API) in the environment variable PIPEDRIVE_PREFLIGHT_TOKEN and rerun\n"
    )
    assert TOKEN not in refused.err


def test_preflight_stops_at_a_spent_daily_budget(sample, tmp_path, capsys):
    from night.check_source import main

    # GIVEN 30 tokens left today: users/me 2, pipelines 5, stages 5 pass, the users list
    # (20) does not
    limits = RateLimits(used_today=30_000 - 30)
    with build_server(SampleDataset(sample), token=TOKEN, rate_limits=limits) as server:
        config = _config(tmp_path, server.url)
        code = main(["demo_crm", "--config", str(config)])
    out = _lines(capsys.readouterr().out)
    assert code == 1
    assert (
        "daily token budget 0 of 30,000 tokens left; resets at midnight, Pipedrive's server time"
    ) in out
    assert out[-2] == "1 thing(s) to do before a first night:"
    assert out[-1].startswith(
        "- GET /v1/users failed: HTTP 429: Pipedrive source 'demo_crm' has spent the "
        "company's daily API token budget of 30,000 tokens"
    )
    assert out[-1].endswith("; run the preflight again after the reset")
    assert len(server.requests) == 4 and limits.used_today == 30_000 - 18
