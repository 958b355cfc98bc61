"""A night whose inputs did not change since the last build does no needless work: no dbt
build, no publish; any change of what the build reads (raw batches, a reference file, the
as-of time) or `full_refresh` builds and publishes again, incrementally where only the raw
layer grew or the as-of time moved (docs/incremental.md), in full otherwise."""

from __future__ import annotations

from datetime import timedelta

import pytest

from conftest import copy_golden_landing, write_golden_config
from golden_marts import GOLDEN_DIR

pytestmark = pytest.mark.slow(seconds=21)


def test_only_a_changed_input_or_full_refresh_rebuilds_and_republishes(tmp_path, golden_as_of):
    from night.config import load_config
    from night.tasks import run_night

    landing = copy_golden_landing(tmp_path / "landing")
    channels = tmp_path / "channel_mapping.csv"
    channels.write_bytes((GOLDEN_DIR / "reference" / "channel_mapping.csv").read_bytes())
    config = load_config(
        write_golden_config(tmp_path / "night", landing=landing, channel_mapping=channels)
    )

    def night(as_of=golden_as_of, **kwargs) -> tuple[bool, bool, str | None]:
        """Built, published, and how: 'incremental', the reason for a full build, or None."""
        result = run_night(as_of=as_of, run_id="n", config=config, **kwargs)
        built = result["built"]
        how = "incremental" if built.get("incremental") else built.get("full_because")
        return built["built"], not result["published"].get("skipped", False), how

    # GIVEN a first night, built and published
    assert night() == (True, True, "no earlier build to continue from")
    published = config.published_path.read_bytes()
    # WHEN the same night runs again on the same files THEN nothing is built or published
    assert night() == (False, False, None)
    assert config.published_path.read_bytes() == published
    # WHEN a reference file changes THEN it builds (in full) and publishes
    with channels.open("a") as fh:
        fh.write("Podcast,audio\n")
    assert night() == (True, True, "the reference changed since the last build")
    assert night() == (False, False, None)
    # WHEN a file is corrected under its name THEN it builds in full: its old batch's raw
    # rows were replaced
    with (landing / "activities.csv").open("a") as fh:
        fh.write("A999,D1,call,2026-02-02T00:00:00Z,u1\n")
    built, published, how = night()
    assert (built, published) == (True, True)
    assert how.startswith(
        "raw.canonical_csv__activities lost or replaced rows since the last build"
    )
    # WHEN the as-of time moves THEN it builds and publishes, incrementally
    assert night(as_of=golden_as_of + timedelta(days=1)) == (True, True, "incremental")
    # WHEN nothing changed but the run asks for a full refresh THEN it builds in full and
    # publishes
    assert night(as_of=golden_as_of + timedelta(days=1), full_refresh=True) == (
        True,
        True,
        "full refresh asked",
    )
