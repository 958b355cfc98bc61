"""dbt's `exceptions` namespace (lint only): a compile error renders nothing."""

from __future__ import annotations


def raise_compiler_error(msg: str) -> str:
    return ""
