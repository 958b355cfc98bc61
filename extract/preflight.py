"""What a connector's preflight finds: read before the first night, written nowhere.

Each API source type module offers `preflight(source, *, as_of) -> Preflight`: it
authenticates, checks permissions (scopes) and the optional fields its org has, reads one
page of each endpoint the night reads, and reports what it found. `python -m
night.check_source <source name>` runs it and adds what only the pipeline config knows
(stages the stage mapping does not map yet).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class CrmStage:
    """A stage as the CRM names it, in the words of the stage mapping's columns."""

    pipeline: str  # the stage mapping's `pipeline` column
    crm_stage: str  # the stage mapping's `crm_stage` column
    deleted: bool = False  # no longer in the pipeline, still named by stage history


@dataclass
class Preflight:
    """The findings of one preflight, in the order they were made."""

    source: str
    # What was found, as (what, value) lines: who the token belongs to, API version,
    # endpoints read and their first page's size, deal count estimate, rate budget left.
    facts: list[tuple[str, str]] = field(default_factory=list)
    # Every stage the CRM has (compared with the stage mapping by night.check_source).
    stages: list[CrmStage] = field(default_factory=list)
    # What the user must do before the first night, one sentence each.
    problems: list[str] = field(default_factory=list)
    # Worth knowing, not blocking (an optional field the org does not have, a small plan).
    notes: list[str] = field(default_factory=list)

    def fact(self, what: str, value: object) -> None:
        self.facts.append((what, str(value)))

    @property
    def ok(self) -> bool:
        return not self.problems
