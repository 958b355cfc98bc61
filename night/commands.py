"""Run a tool of the venv (dbt, airflow) as a subprocess, its output streamed as it comes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

TAIL_LINES = 80


class CommandError(RuntimeError):
    """A command failed; the message ends with the last lines of its output."""


def venv_tool(name: str) -> str:
    """The path of a console script installed next to this Python (dbt, airflow)."""
    return str(Path(sys.executable).with_name(name))


def run(
    cmd: Sequence[str],
    env: dict[str, str],
    *,
    on_line: Callable[[str], None],
    error: type[CommandError] = CommandError,
) -> str:
    """Run `cmd`, pass every output line to `on_line`; return the output, raise `error` on
    a non-zero exit with the output's last lines."""
    lines: list[str] = []
    with subprocess.Popen(
        list(cmd), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            on_line(line)
            lines.append(line)
        code = proc.wait()
    if code != 0:
        words = [Path(cmd[0]).name]
        for arg in cmd[1:]:
            if arg.startswith("-"):
                break
            words.append(arg)
        raise error(f"{' '.join(words)} failed (exit {code}):\n" + "\n".join(lines[-TAIL_LINES:]))
    return "\n".join(lines)
