"""Cursor pagination that cannot loop forever, and batching so pages stream into the warehouse.

A connector describes its endpoint with two functions: `fetch_page(cursor)` (None for the
first page) and `next_cursor(page)` (None or "" on the last page), e.g. HubSpot's
`paging.next.after`, Pipedrive's `additional_data.next_cursor` or Salesforce's
`nextRecordsUrl`. `paginate` yields pages one at a time, fetching the next only when asked.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import TypeVar

T = TypeVar("T")

_CURSOR_SHOWN_CHARS = 200
# A cursor may be a next link; never echo a credential that an API put into one.
_SECRET_PAIR = re.compile(
    r"([A-Za-z0-9_.\-]*(?:token|secret|passw|key|signature|credential|auth|session)"
    r"[A-Za-z0-9_.\-]*=)[^&\s'\"]+",
    re.I,
)


class PaginationError(RuntimeError):
    """The API's paging misbehaved (repeated cursor, too many pages, no record list)."""


def _show(cursor: object) -> str:
    text = _SECRET_PAIR.sub(r"\1***", repr(cursor))
    if len(text) > _CURSOR_SHOWN_CHARS:
        text = text[:_CURSOR_SHOWN_CHARS] + "...'"
    return text


def paginate(
    fetch_page: Callable[[str | None], dict],
    next_cursor: Callable[[dict], str | None],
    *,
    max_pages: int,
) -> Iterator[dict]:
    """Yield pages lazily, failing on a repeated cursor or a reached page cap instead of looping."""
    if max_pages < 1:
        raise ValueError("max_pages must be at least 1")
    seen: set[str] = set()
    cursor: str | None = None
    pages = 0
    while True:
        page = fetch_page(cursor)
        pages += 1
        following = next_cursor(page)
        # Checked before this page is yielded: a caller never consumes a page from a paging
        # sequence already known to be broken, so it fails before writing anything more.
        if following and (following in seen or following == cursor):
            raise PaginationError(
                f"cursor {_show(following)} repeated after {pages} page(s): the API would "
                f"serve the same pages again, stopping instead of looping"
            )
        if following and pages >= max_pages:
            raise PaginationError(
                f"page cap of {max_pages} reached with a next cursor {_show(following)} still "
                f"present: raise max_pages if the source really is this large"
            )
        yield page
        if not following:
            return
        seen.add(following)
        cursor = following


def records(pages: Iterable[dict], extract: Callable[[dict], list]) -> Iterator[dict]:
    """Flatten pages into records with `extract(page)`; None counts as empty, a non-list fails."""
    for number, page in enumerate(pages, start=1):
        items = extract(page)
        if items is None:
            # An API that omits the list on an empty page is normal (Pipedrive's `data: null`).
            continue
        if not isinstance(items, list | tuple):
            raise PaginationError(
                f"page {number}: expected a list of records, got {type(items).__name__}"
            )
        yield from items


def batched(iterable: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of at most `size` items, so a source is written without holding it all."""
    if size < 1:
        raise ValueError("batch size must be at least 1")
    iterator = iter(iterable)
    while batch := list(islice(iterator, size)):
        yield batch
