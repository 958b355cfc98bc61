"""The landing folder of a file source: which files are ready, loading each once, archiving.

Every file source (the canonical CSV format, the CRM and ad-platform exports) lands its
files through `load_landing`, so they all behave alike:

- **Files still being written are not picked up**: hidden and temporary names (`.x`,
  `~$x`, `*.tmp`, `*.part`, `*.partial`, `*.crdownload`, `*.filepart`, `*.download`) are
  skipped, and so is a file modified less than `settle_seconds` ago (left for the next
  night; 0 turns the check off). Writers that rename a finished file into place need none.
- **A file is loaded once, by content.** With `archive: true` a file whose content (SHA-256)
  was already loaded for the same raw table is not loaded again, whatever its name; a
  loaded file moves to `<landing_dir>/_archive/<as-of date>/<its path>` and is recorded
  under that name, so tomorrow's `deals.csv` is a new delivery, not a correction of
  today's. Without archiving (the default, for folders the pipeline may not move files
  out of), a file is identified by its path, and new content under the same path is a
  corrected version that replaces the earlier one (extract.warehouse.load_csv_file).
- **A broken file is set aside with its reason while the others load.** With archiving,
  a file that cannot be loaded at all (missing or doubled columns, no header, wrong
  delimiter) moves to `_rejected/<as-of date>/` with a `<name>.reason.txt` beside it,
  each of its records is quarantined with that reason (so loaded + quarantined = the
  file's records), and the night goes on. Without archiving, the task fails naming
  every broken file after loading the others.
- **Values are range-checked against the night's as-of time** (`plausible:`): dates
  outside a window of years around it, and amounts beyond the warehouse's, are
  quarantined (extract.file_formats.Plausible).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from extract.errors import LoadError
from extract.file_formats import (
    CANONICAL,
    MAX_AMOUNT,
    PLAUSIBLE_YEARS_AFTER,
    PLAUSIBLE_YEARS_BEFORE,
    FileFormat,
    Plausible,
    validate_format,
    validate_plausible,
)
from extract.warehouse import (
    RAW_SCHEMA,
    FileLoad,
    LoadReport,
    RawObject,
    file_sha256,
    load_csv_file,
    reject_file,
)

log = logging.getLogger(__name__)

ARCHIVE_DIR = "_archive"
REJECTED_DIR = "_rejected"
_IN_PROGRESS = re.compile(
    r"(^[.~])|(^~\$)|\.(tmp|temp|part|partial|crdownload|filepart|download|!ut)$", re.I
)

LANDING_KEYS = {"landing_dir", "archive", "settle_seconds", "format", "plausible"}


@dataclass(frozen=True)
class Landing:
    """A file source's landing folder settings."""

    landing_dir: Path
    archive: bool = False
    settle_seconds: int = 0
    fmt: FileFormat = CANONICAL
    # `plausible:` the window of years around the as-of that dates must fall in, and the
    # largest amount
    years_before: int = PLAUSIBLE_YEARS_BEFORE
    years_after: int = PLAUSIBLE_YEARS_AFTER
    max_amount: Decimal = MAX_AMOUNT

    def plausible_at(self, as_of: datetime) -> Plausible:
        """The range a night's values must fall in: a window of years around its as-of."""
        return Plausible.around(
            as_of,
            years_before=self.years_before,
            years_after=self.years_after,
            max_amount=self.max_amount,
        )


def validate_landing(settings: dict[str, Any], where: Any, extra: set[str] = frozenset()) -> dict:
    """The landing keys of a file source's config (`landing_dir`, `archive`,
    `settle_seconds`, `format`, `plausible`) plus the source type's own optional `extra`
    keys."""
    where.mapping(settings, "", required={"landing_dir"}, optional=(LANDING_KEYS | extra))
    archive = settings.get("archive", False)
    if not isinstance(archive, bool):
        raise where.error("archive", "must be true or false")
    settle = settings.get("settle_seconds", 0)
    if isinstance(settle, bool) or not isinstance(settle, int) or settle < 0:
        raise where.error("settle_seconds", f"must be a whole number >= 0, got {settle!r}")
    landing = Landing(
        landing_dir=where.path(settings["landing_dir"], "landing_dir"),
        archive=archive,
        settle_seconds=settle,
        fmt=validate_format(settings.get("format"), where),
        **validate_plausible(settings.get("plausible"), where),
    )
    return {
        **{k: v for k, v in settings.items() if k in extra},
        "landing_dir": landing.landing_dir,
        "landing": landing,
    }


def in_progress(path: Path) -> bool:
    """A name writers use while a file is incomplete."""
    return bool(_IN_PROGRESS.search(path.name))


def candidate_files(landing: Landing) -> list[Path]:
    """Files under the landing folder in path order, outside _archive/_rejected. A link
    that leads nowhere (dangling, or a loop) is skipped with a warning naming it."""
    root = landing.landing_dir
    found = []
    for p in root.rglob("*"):
        parts = p.relative_to(root).parts
        if parts[0] in (ARCHIVE_DIR, REJECTED_DIR) or any(x.startswith(".") for x in parts[:-1]):
            continue
        if p.is_file():
            found.append(p)
        elif p.is_symlink() and not p.is_dir():
            log.warning("%s: skipped, a link that leads to no file (dangling or a loop)", p)
    return sorted(found)


def load_landing(
    con: duckdb.DuckDBPyConnection,
    source: Any,
    *,
    as_of: datetime,
    object_for: Callable[[Path], RawObject | None],
    fixed_values: Callable[[Path, RawObject], dict[str, str]] | None = None,
    kind: str = "file",
    footer_start: Callable[[Path, RawObject, FileFormat], int | None] | None = None,
) -> LoadReport:
    """Load every ready file of a source's landing folder into raw; report what happened.

    `object_for` names the raw object a file belongs to (None: not this source's file,
    reported as ignored). `fixed_values` may give columns filled for a whole file (e.g.
    the snapshot time of a snapshot export). `footer_start` may give the line where a
    file's footer starts (None: no footer), for exports that end in lines of their own
    (report totals, a copyright notice): those lines are not loaded, the source logs
    them; a LoadError from it sets the file aside like any load error.
    """
    landing: Landing = source.settings["landing"]
    root = landing.landing_dir
    report = LoadReport(source.name)
    if not root.is_dir():
        raise LoadError(f"{source.name}: landing folder {root} does not exist")
    now = time.time()  # file-system age only: whether a writer may still be busy
    day = f"{as_of:%Y-%m-%d}"
    plausible = landing.plausible_at(as_of)
    ready: list[tuple[Path, str, RawObject]] = []
    for path in candidate_files(landing):
        rel = path.relative_to(root).as_posix()
        if in_progress(path):
            log.info("%s: %s has a temporary name, left for a later night", source.name, rel)
            continue
        obj = object_for(path)
        if obj is None:
            report.ignored.append(rel)
            log.warning("%s: %s is not a %s of this source, ignored", source.name, rel, kind)
            continue
        if landing.settle_seconds and now - path.stat().st_mtime < landing.settle_seconds:
            report.waiting.append(rel)
            log.info("%s: %s changed under %ds ago, left for the next night", source.name, rel,
                     landing.settle_seconds)  # fmt: skip
            continue
        ready.append((path, rel, obj))
    # Each file's SHA-256 (its identity: an unchanged file is not loaded again) is read
    # beside the loads, several files at once (hashlib works outside the GIL), each one
    # ready before its file's turn, unless the file is still as it was when an earlier
    # night read it (file_identities). 1,000,000 deals: 1.8 s of hashing, ~0.9 s of it in
    # the night's time. A few threads at most: reading more files at once only shares the
    # disk among them.
    workers = min(4, os.cpu_count() or 1)
    hashing = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sha256")
    try:
        hashes = file_identities(
            con,
            source.name,
            [(path, rel) for path, rel, _ in ready],
            hashing,
            # An archived file leaves the folder once loaded: no later night finds it.
            remember=not landing.archive,
        )
        for (path, rel, obj), hashed in zip(ready, hashes, strict=True):
            sha = hashed()
            source_file = rel
            if landing.archive:
                earlier = _loaded_with_content(con, source.name, obj, sha)
                if earlier:
                    log.info("%s: %s has the content of %s, not loaded again", source.name, rel,
                             earlier)  # fmt: skip
                    report.files.append(FileLoad(rel, obj.table, "unchanged"))
                    _move(path, root / ARCHIVE_DIR / day / rel)
                    continue
                source_file = _free_name(con, source.name, obj, f"{day}/{rel}")
            fixed = fixed_values(path, obj) if fixed_values else {}
            try:
                stop_line = footer_start(path, obj, landing.fmt) if footer_start else None
                result = load_csv_file(
                    con,
                    source_system=source.name,
                    obj=obj,
                    path=path,
                    source_file=source_file,
                    fmt=landing.fmt,
                    fixed=fixed,
                    stop_line=stop_line,
                    sha=sha,
                    plausible=plausible,
                )
            except LoadError as exc:
                if not landing.archive:
                    report.errors.append(str(exc))
                    log.error("%s", exc)
                    continue
                result = reject_file(
                    con,
                    source_system=source.name,
                    obj=obj,
                    path=path,
                    source_file=source_file,
                    reason=str(exc).removeprefix(f"{path}: "),
                    fmt=landing.fmt,
                    sha=sha,
                )
                target = root / REJECTED_DIR / source_file
                _move(path, target)
                target.with_name(target.name + ".reason.txt").write_text(f"{exc}\n")
                report.rejected.append(f"{rel}: {str(exc).removeprefix(f'{path}: ')}")
                log.error("%s: %s set aside in %s: %s", source.name, rel, REJECTED_DIR, exc)
            else:
                if landing.archive:
                    _move(path, root / ARCHIVE_DIR / source_file)
            report.files.append(result)
            log.info(
                "%s: %s -> %s: %s, %d rows loaded, %d quarantined",
                source.name,
                rel,
                obj.qualified,
                result.action,
                result.rows_loaded,
                result.rows_quarantined,
            )
    finally:
        hashing.shutdown(cancel_futures=True)
    if report.errors:
        raise LoadError(
            f"{source.name}: {len(report.errors)} file(s) could not be loaded "
            f"(the other files were loaded):\n" + "\n".join(report.errors)
        )
    return report


# A file's status is trusted for its content only when it was last changed this long
# before the hash was read: a write in the same tick of the file system's clock would
# leave the status unchanged (git's "racily clean" index entries).
_SETTLED_NS = 2_000_000_000


def _file_status(st: os.stat_result) -> str:
    """What changes whenever a file's content may have: its device and inode, size, and
    modification and change times (the change time is the kernel's, set on every write,
    rename or time change: a tool that restores the modification time still changes it)."""
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"


def _hash_and_status(path: Path) -> tuple[str, str | None]:
    """The file's SHA-256, and its status if that can stand for this content later: the
    same before and after the read, and last changed well before it (_SETTLED_NS)."""
    started = time.time_ns()  # file-system times only, as the settle check
    before = path.stat()
    sha = file_sha256(path)
    settled = before.st_ctime_ns < started - _SETTLED_NS
    status = _file_status(before)
    return sha, status if settled and _file_status(path.stat()) == status else None


def file_identities(
    con: duckdb.DuckDBPyConnection,
    source_system: str,
    files: list[tuple[Path, str]],
    hashing: ThreadPoolExecutor,
    *,
    remember: bool = True,
) -> list[Callable[[], str]]:
    """Each file's SHA-256, as a call that waits for it: read in `hashing`'s threads, or
    taken from raw._landing_hashes when the file's status is the one recorded with it (a
    file left in the landing folder, unchanged since an earlier night read it). A hash
    read is recorded when its call returns (in the caller's thread: the connection's);
    the records of files no longer among `files` are dropped. `remember=False`: every
    file is read, nothing recorded."""
    if not remember:
        return [hashing.submit(file_sha256, path).result for path, _ in files]
    known = dict(
        con.execute(
            f"""select source_file, file_status || ' ' || file_sha256
                from {RAW_SCHEMA}._landing_hashes where source_system = ?""",
            [source_system],
        ).fetchall()
    )
    gone = sorted(set(known) - {rel for _, rel in files})
    if gone:
        con.execute(
            f"""delete from {RAW_SCHEMA}._landing_hashes
                where source_system = ? and list_contains(?, source_file)""",
            [source_system, gone],
        )

    def cached(sha: str) -> Callable[[], str]:
        return lambda: sha

    def read(rel: str, future: Future) -> Callable[[], str]:
        def result() -> str:
            sha, status = future.result()
            if status is not None:
                con.execute(
                    f"insert or replace into {RAW_SCHEMA}._landing_hashes values (?, ?, ?, ?)",
                    [source_system, rel, status, sha],
                )
            return sha

        return result

    calls = []
    for path, rel in files:
        status, _, sha = known.get(rel, "").partition(" ")
        if sha and status == _file_status(path.stat()):
            calls.append(cached(sha))
        else:
            calls.append(read(rel, hashing.submit(_hash_and_status, path)))
    return calls


def _loaded_with_content(
    con: duckdb.DuckDBPyConnection, source_system: str, obj: RawObject, sha: str
) -> str | None:
    rows = con.execute(
        f"""select min(source_file) from {RAW_SCHEMA}._batches
            where source_system = ? and raw_table = ? and file_sha256 = ?
              and superseded_by is null""",
        [source_system, obj.table, sha],
    ).fetchall()
    return rows[0][0] if rows else None


def _free_name(
    con: duckdb.DuckDBPyConnection, source_system: str, obj: RawObject, name: str
) -> str:
    """`name`, or `name~2`, `name~3`...: a delivery never supersedes an earlier one."""
    taken = {
        r[0]
        for r in con.execute(
            f"""select source_file from {RAW_SCHEMA}._batches
                where source_system = ? and raw_table = ? and source_file like ?""",
            [source_system, obj.table, name + "%"],
        ).fetchall()
    }
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}~{n}"
    return candidate


def _move(path: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        target = target.with_name(f"{target.name}.{time.time_ns()}")
    shutil.move(str(path), str(target))


_STAMP = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})(?:[T_ ](?P<h>\d{2})[-:.]?(?P<m>\d{2})(?:[-:.]?(?P<s>\d{2}))?)?"
)


def snapshot_time(path: Path, as_of: datetime) -> str:
    """When a snapshot export was taken, as UTC ISO text: the date (and time) in its file
    name (`deals-2026-11-26.csv`, `deals_2026-11-26T0200.csv`), else the night's as-of
    time. Never the file's mtime or the clock, so reloading gives the same history."""
    found = None
    for match in _STAMP.finditer(path.name):
        found = match
    if found is None:
        return as_of.strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    h, m, s = (found.group(k) or "00" for k in ("h", "m", "s"))
    return f"{found.group('date')}T{h}:{m}:{s}.000000Z"
