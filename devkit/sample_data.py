"""Deterministic sample CRM data in the canonical CSV format, for the demo night and benchmarks.

One CRM (`demo_crm` in the pipeline config) with three pipelines, each with its own stage
names; deals walk through the stages over time (skips, regressions, losses at every stage,
open deals near the end date), plus activities and marketing / sales spend.

The same arguments always give byte-identical files: deals are generated in fixed-size blocks,
each with its own random generator derived from the seed and the block number, so the output
does not depend on how many worker processes generate the blocks. Rows are written block by
block, so memory does not grow with the number of deals.

Usage: python -m devkit.sample_data --out DIR --deals N --seed S [--start D] [--end D]
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import os
import random
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, timedelta
from multiprocessing import get_context
from pathlib import Path
from typing import BinaryIO, NamedTuple

# --------------------------------------------------------------------------------------------
# Reference constants (the demo reference data in config/reference/ must cover them all)
# --------------------------------------------------------------------------------------------

SOURCE_SYSTEM = "demo_crm"
REPORTING_CURRENCY = "USD"
CURRENCIES = ("USD", "EUR", "GBP")

DEALS_COLUMNS = (
    "deal_id",
    "deal_name",
    "pipeline",
    "stage",
    "status",
    "amount",
    "currency",
    "owner_id",
    "owner_name",
    "company_id",
    "lead_source",
    "created_at",
    "closed_at",
    "updated_at",
)
STAGE_HISTORY_COLUMNS = ("deal_id", "stage", "changed_at")
ACTIVITIES_COLUMNS = ("activity_id", "deal_id", "activity_type", "occurred_at", "owner_id")
SPEND_COLUMNS = ("date", "channel", "category", "amount", "currency")

FILE_COLUMNS: dict[str, tuple[str, ...]] = {
    "deals.csv": DEALS_COLUMNS,
    "deal_stage_history.csv": STAGE_HISTORY_COLUMNS,
    "activities.csv": ACTIVITIES_COLUMNS,
    "spend.csv": SPEND_COLUMNS,
}

# (funnel_stage, description) in funnel order, as in METRICS.md.
FUNNEL_STAGES: tuple[tuple[str, str], ...] = (
    ("prospecting", "potential customer identified"),
    ("lead_generation", "contact details captured, first qualification"),
    ("first_contact", "first call / email / meeting held"),
    ("needs_assessment", "needs and pain points understood"),
    ("solution_presentation", "solution presented / demo"),
    ("proposal", "proposal or quote sent"),
    ("negotiation", "terms negotiated"),
    ("closed_won", "the customer agreed to buy"),
)
FUNNEL_ORDER: dict[str, int] = {name: i + 1 for i, (name, _) in enumerate(FUNNEL_STAGES)}
LOST = "lost"


@dataclass(frozen=True)
class CrmStage:
    """One open CRM stage: its funnel stage, CRM win probability and how deals behave in it."""

    name: str
    funnel_stage: str
    probability: float
    mean_days: float
    p_lost: float


@dataclass(frozen=True)
class Pipeline:
    """A CRM pipeline: its open stages in funnel order, its own won / lost stages, deal shape."""

    name: str
    weight: float
    stages: tuple[CrmStage, ...]
    won_stage: str
    lost_stage: str
    amount_median: float
    products: tuple[str, ...]

    def stage_mapping(self) -> list[tuple[str, str, float]]:
        """(crm_stage, funnel_stage, probability) of every stage of this pipeline, for the seed."""
        rows = [(s.name, s.funnel_stage, s.probability) for s in self.stages]
        return rows + [(self.won_stage, "closed_won", 1.0), (self.lost_stage, LOST, 0.0)]


PIPELINES: tuple[Pipeline, ...] = (
    Pipeline(
        name="New Business",
        weight=0.60,
        stages=(
            CrmStage("Prospect", "prospecting", 0.05, 3.0, 0.22),
            CrmStage("Lead", "lead_generation", 0.10, 4.0, 0.18),
            CrmStage("Contacted", "first_contact", 0.15, 6.0, 0.14),
            CrmStage("Discovery Call", "needs_assessment", 0.20, 5.0, 0.06),
            CrmStage("Qualified", "needs_assessment", 0.30, 6.0, 0.07),
            CrmStage("Demo Scheduled", "solution_presentation", 0.40, 5.0, 0.05),
            CrmStage("Demo Completed", "solution_presentation", 0.45, 6.0, 0.07),
            CrmStage("Proposal Sent", "proposal", 0.60, 12.0, 0.15),
            CrmStage("Negotiation", "negotiation", 0.80, 16.0, 0.18),
        ),
        won_stage="Closed Won",
        lost_stage="Closed Lost",
        amount_median=18_000.0,
        products=("Platform (annual)", "Platform (3-year)", "Starter", "Enterprise Suite"),
    ),
    Pipeline(
        name="Expansion",
        weight=0.25,
        stages=(
            CrmStage("Account Review", "prospecting", 0.10, 4.0, 0.15),
            CrmStage("Upsell Identified", "lead_generation", 0.20, 4.0, 0.10),
            CrmStage("Champion Engaged", "first_contact", 0.30, 5.0, 0.08),
            CrmStage("Requirements", "needs_assessment", 0.40, 7.0, 0.08),
            CrmStage("Solution Design", "solution_presentation", 0.55, 7.0, 0.07),
            CrmStage("Quote", "proposal", 0.70, 8.0, 0.10),
            CrmStage("Legal & Procurement", "negotiation", 0.85, 12.0, 0.10),
        ),
        won_stage="Signed",
        lost_stage="Dropped",
        amount_median=7_500.0,
        products=("Seat Expansion", 'Add-on "Analytics"', "Premium Support", "API Package"),
    ),
    Pipeline(
        name="Partner",
        weight=0.15,
        stages=(
            CrmStage("Partner Sourced", "prospecting", 0.05, 5.0, 0.20),
            CrmStage("Registered", "lead_generation", 0.10, 3.0, 0.12),
            CrmStage("Registration Approved", "lead_generation", 0.15, 4.0, 0.08),
            CrmStage("Partner Intro", "first_contact", 0.20, 8.0, 0.12),
            CrmStage("Joint Discovery", "needs_assessment", 0.35, 10.0, 0.10),
            CrmStage("Joint Demo", "solution_presentation", 0.45, 9.0, 0.10),
            CrmStage("Partner Proposal", "proposal", 0.60, 14.0, 0.14),
            CrmStage("Commercials", "negotiation", 0.80, 20.0, 0.18),
        ),
        won_stage="Deal Won (Partner)",
        lost_stage="Disqualified",
        amount_median=28_000.0,
        products=("Reseller Deal", "Referral Deal", "OEM Licence"),
    ),
)

# lead_source -> channel (None: deliberately absent from channel_mapping.csv).
LEAD_SOURCE_CHANNELS: dict[str, str | None] = {
    "Google Ads": "google_ads",
    "AdWords": "google_ads",  # the legacy name still found on old deals
    "LinkedIn": "linkedin",
    "linkedin ": "linkedin",  # hand-typed: mapping is trimmed and case-insensitive
    "Referral": "referral",
    "Webinar": "webinar",
    "Outbound": "outbound",
    "Organic Search": "organic_search",
    "Partner": "partner",
    "Trade Show 2019": None,
    "": None,
}
CHANNELS: tuple[str, ...] = (
    "google_ads",
    "linkedin",
    "referral",
    "webinar",
    "outbound",
    "organic_search",
    "partner",
)
SPEND_CHANNELS: tuple[str, ...] = CHANNELS

_GENERAL_LEAD_SOURCES = (
    ("Google Ads", 22),
    ("AdWords", 3),
    ("LinkedIn", 14),
    ("linkedin ", 1),
    ("Referral", 10),
    ("Webinar", 9),
    ("Outbound", 16),
    ("Organic Search", 10),
    ("Partner", 3),
    ("Trade Show 2019", 2),
    ("", 10),
)

ACTIVITY_TYPES = ("email", "call", "meeting")

# Owners by region; the region decides the deal currency. Some names are non-ASCII on purpose.
_OWNER_NAMES: dict[str, tuple[str, ...]] = {
    "USD": (
        "Emily Carter",
        "James Walker",
        "Olivia Brooks",
        "Michael Chen",
        "Sophia Martinez",
        "Daniel Kim",
        "Sarah Miller",
        "Ethan Wright",
        "Ava Thompson",
        "Noah Patel",
        "Mia Robinson",
        "Lucas Rivera",
        "Chloe Nguyen",
        "Benjamin Scott",
        "Grace O'Neill",
        "Henry Adams",
        "Zoe Bennett",
        "Jack Morgan",
        "Lily Foster",
        "Ryan Hughes",
    ),
    "EUR": (
        "Lukas Müller",
        "Léa Dubois",
        "Matteo Rossi",
        "Sofía García",
        "Jan de Vries",
        "Anna Kowalska",
        "Jörg Schäfer",
        "Camille Lefèvre",
        "Marco Bianchi",
        "Elif Yılmaz",
    ),
    "GBP": (
        "Oliver Hughes",
        "Amelia Clarke",
        "Harry Evans",
        "Isla Campbell",
        "George Davies",
        "Siobhán Murphy",
    ),
}
OWNERS: tuple[tuple[str, str, str], ...] = tuple(
    (f"U{1001 + i}", name, currency)
    for i, (currency, name) in enumerate(
        (c, n) for c in ("USD", "EUR", "GBP") for n in _OWNER_NAMES[c]
    )
)
# An owner renamed half-way through the period: the name differs between her deals.
_RENAMED_OWNER = ("U1007", "Sarah Johnson")

# --------------------------------------------------------------------------------------------
# Awkward cases (opt-in: generate(..., awkward=True)), the cases real CRMs produce that the
# walk above does not: appended after the generated deals, so the default output (and every
# figure asserted on it) stays as it is. Their stage mapping rows (awkward_stage_mapping) are
# not in config/reference/: a night on awkward data gives a mapping with them.
# --------------------------------------------------------------------------------------------

AWKWARD_PIPELINES: tuple[Pipeline, ...] = (
    Pipeline(
        name="Inbound",
        weight=0.0,
        stages=(
            CrmStage("Lead Captured", "lead_generation", 0.10, 0.0, 0.0),
            CrmStage("Intro Call", "first_contact", 0.20, 0.0, 0.0),
            CrmStage("Needs Review", "needs_assessment", 0.30, 0.0, 0.0),
            CrmStage("Demo Given", "solution_presentation", 0.45, 0.0, 0.0),
            CrmStage("Offer Sent", "proposal", 0.60, 0.0, 0.0),
            CrmStage("Offer Revised", "proposal", 0.65, 0.0, 0.0),
            CrmStage("Contract Talks", "negotiation", 0.80, 0.0, 0.0),
        ),
        won_stage="Won",
        lost_stage="Lost",
        amount_median=0.0,
        products=(),
    ),
    Pipeline(
        name="Renewals",
        weight=0.0,
        stages=(
            CrmStage("Renewal Due", "prospecting", 0.50, 0.0, 0.0),
            CrmStage("Renewal Quote", "proposal", 0.70, 0.0, 0.0),
            CrmStage("Renewal Signature", "negotiation", 0.90, 0.0, 0.0),
        ),
        won_stage="Renewed",
        lost_stage="Churned",
        amount_median=0.0,
        products=(),
    ),
)


class AwkwardDeal(NamedTuple):
    """One hand-made deal: its deals.csv row (canonical columns), history and activities."""

    row: tuple[str, ...]
    history: tuple[tuple[str, str], ...]  # (stage, changed_at) in file order
    activities: tuple[tuple[str, str, str, str], ...]  # (activity_id, type, occurred_at, owner)


def _awkward(deal_id, pipeline, stage, status, amount, currency, owner, company, lead_source,
             created, closed, history, activities=()):  # fmt: skip
    owner_name = next(name for oid, name, _ in OWNERS if oid == owner)
    name = f"{pipeline} deal {deal_id}"
    row = (deal_id, name, pipeline, stage, status, amount, currency, owner, owner_name,
           company, lead_source, created, closed, closed or created)  # fmt: skip
    return AwkwardDeal(row, tuple(history), tuple(activities))


AWKWARD_DEALS: tuple[AwkwardDeal, ...] = (
    # Two changes in the same second (listed against funnel order: ties go by funnel order,
    # METRICS.md), then a genuine re-entry of the first the next day; skips, a regression
    # by two funnel stages, two CRM stages of one funnel stage in a row.
    _awkward(
        "D9000001",
        "Inbound",
        "Won",
        "won",
        "12000.00",
        "USD",
        "U1001",
        "C9000001",
        "Webinar",
        "2025-02-03T09:00:00Z",
        "2025-03-03T12:00:00Z",
        (
            ("Intro Call", "2025-02-03T09:00:00Z"),
            ("Lead Captured", "2025-02-03T09:00:00Z"),
            ("Lead Captured", "2025-02-04T10:00:00Z"),
            ("Intro Call", "2025-02-05T10:00:00Z"),
            ("Demo Given", "2025-02-07T15:00:00Z"),
            ("Offer Sent", "2025-02-10T11:00:00Z"),
            ("Offer Revised", "2025-02-12T11:00:00Z"),
            ("Needs Review", "2025-02-14T16:00:00Z"),
            ("Demo Given", "2025-02-18T10:00:00Z"),
            ("Offer Sent", "2025-02-20T10:00:00Z"),
            ("Contract Talks", "2025-02-24T10:00:00Z"),
            ("Won", "2025-03-03T12:00:00Z"),
        ),
        (
            ("A900000101", "call", "2025-02-03T10:00:00Z", "U1001"),
            ("A900000102", "email", "2025-02-20T10:00:00+01:00", "U1001"),
        ),
    ),  # fmt: skip
    # Won, but the history lacks the move to Won: its negotiation spell lasts 33.4 days.
    _awkward(
        "D9000002",
        "Inbound",
        "Won",
        "won",
        "8400.00",
        "EUR",
        "U1021",
        "C9000002",
        "LinkedIn",
        "2025-04-01T08:00:00Z",
        "2025-05-18T18:36:00Z",
        (
            ("Lead Captured", "2025-04-01T08:00:00Z"),
            ("Intro Call", "2025-04-02T08:00:00Z"),
            ("Demo Given", "2025-04-08T09:00:00Z"),
            ("Contract Talks", "2025-04-15T09:00:00Z"),
        ),
        (("A900000201", "meeting", "2025-04-08T08:00:00Z", "U1021"),),
    ),  # fmt: skip
    # Lost, but the history lacks the move to Churned.
    _awkward(
        "D9000003",
        "Renewals",
        "Churned",
        "lost",
        "5000.00",
        "USD",
        "U1002",
        "C9000003",
        "",
        "2025-05-02T10:00:00Z",
        "2025-06-20T14:00:00Z",
        (
            ("Renewal Due", "2025-05-02T10:00:00Z"),
            ("Renewal Quote", "2025-05-20T10:00:00Z"),
        ),
    ),  # fmt: skip
    # Won without any stage history, and without an amount.
    _awkward(
        "D9000004",
        "Renewals",
        "Renewed",
        "won",
        "",
        "USD",
        "U1003",
        "C9000004",
        "Referral",
        "2025-03-10T10:00:00Z",
        "2025-04-10T10:00:00Z",
        (),
        (("A900000401", "email", "2025-03-20T10:00:00Z", "U1003"),),
    ),  # fmt: skip
    # Open without any stage history, without an amount.
    _awkward(
        "D9000005",
        "Inbound",
        "Needs Review",
        "open",
        "",
        "USD",
        "U1004",
        "C9000005",
        "Outbound",
        "2025-06-02T10:00:00Z",
        "",
        (),
    ),  # fmt: skip
    # Times with non-UTC offsets; the close is in August locally, in July in UTC.
    _awkward(
        "D9000006",
        "Renewals",
        "Churned",
        "lost",
        "3000.00",
        "GBP",
        "U1031",
        "C9000006",
        "Partner",
        "2025-07-01T09:15:00+05:30",
        "2025-08-02T00:30:00+02:00",
        (
            ("Renewal Due", "2025-07-01T09:15:00+05:30"),
            ("Renewal Quote", "2025-07-20T18:00:00-04:00"),
            ("Churned", "2025-08-02T00:30:00+02:00"),
        ),
    ),  # fmt: skip
    # A follow-on win of D9000001's customer, with offsets; closed in October UTC.
    _awkward(
        "D9000007",
        "Renewals",
        "Renewed",
        "won",
        "4500.00",
        "USD",
        "U1001",
        "C9000001",
        "Webinar",
        "2025-09-01T23:30:00-05:00",
        "2025-09-30T22:00:00-03:00",
        (
            ("Renewal Due", "2025-09-01T23:30:00-05:00"),
            ("Renewal Signature", "2025-09-15T10:00:00+01:00"),
            ("Renewed", "2025-09-30T22:00:00-03:00"),
        ),
        (("A900000701", "call", "2025-09-10T09:00:00-05:00", "U1001"),),
    ),  # fmt: skip
    # Open after a skip, a regression and a skip, without an amount.
    _awkward(
        "D9000008",
        "Inbound",
        "Offer Revised",
        "open",
        "",
        "USD",
        "U1005",
        "",
        "Google Ads",
        "2025-10-06T09:00:00Z",
        "",
        (
            ("Lead Captured", "2025-10-06T09:00:00Z"),
            ("Needs Review", "2025-10-08T09:00:00Z"),
            ("Intro Call", "2025-10-10T09:00:00Z"),
            ("Offer Sent", "2025-10-15T09:00:00Z"),
            ("Offer Revised", "2025-10-20T09:00:00Z"),
        ),
    ),  # fmt: skip
    # Lost in the same second as its last move (listed first): lost goes last.
    _awkward(
        "D9000009",
        "Inbound",
        "Lost",
        "lost",
        "2500.00",
        "USD",
        "U1006",
        "C9000009",
        "Google Ads",
        "2025-11-03T09:00:00Z",
        "2025-11-12T10:00:00Z",
        (
            ("Lead Captured", "2025-11-03T09:00:00Z"),
            ("Intro Call", "2025-11-05T09:00:00Z"),
            ("Lost", "2025-11-12T10:00:00Z"),
            ("Offer Sent", "2025-11-12T10:00:00Z"),
        ),
    ),  # fmt: skip
)


def awkward_stage_mapping() -> list[tuple[str, str, str, str, str]]:
    """Stage mapping rows (source_system, pipeline, crm_stage, funnel_stage, probability) of
    the awkward pipelines, in the columns of config/reference/stage_mapping.csv."""
    return [
        (SOURCE_SYSTEM, p.name, stage, funnel, f"{probability:.2f}")
        for p in AWKWARD_PIPELINES
        for stage, funnel, probability in p.stage_mapping()
    ]


def _awkward_rows() -> tuple[list[tuple], list[tuple], list[tuple]]:
    """deals.csv, deal_stage_history.csv and activities.csv rows of the awkward deals."""
    deals = [d.row for d in AWKWARD_DEALS]
    history = [(d.row[0], stage, at) for d in AWKWARD_DEALS for stage, at in d.history]
    activities = [
        (activity_id, d.row[0], kind, at, owner)
        for d in AWKWARD_DEALS
        for activity_id, kind, at, owner in d.activities
    ]
    return deals, history, activities


_COMPANY_WORDS_A = (
    "Acme",
    "Blue",
    "Northwind",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Hooli",
    "Vandelay",
    "Nordlicht",
    "Müller",
    "Société",
    "Brightside",
    "Cobalt",
    "Evergreen",
    "Falcon",
    "Granite",
    "Harbor",
    "Ironclad",
    "Juniper",
    "Keystone",
    "Lumen",
    "Meridian",
)
_COMPANY_WORDS_B = (
    "Analytics",
    "Logistics",
    "Foods",
    "Systems",
    "Health",
    "Energy",
    "Labs",
    "Retail",
    "Capital",
    "Robotics",
    "Media",
    "Textiles",
    "Software",
    "Pharma",
    "Motors",
    "Travel",
)
_COMPANY_SUFFIXES = ("Inc.", "Ltd", "GmbH", "SA", "LLC", "Holdings, Inc.", "plc", "BV", "AG", "Co.")

# --------------------------------------------------------------------------------------------
# Behaviour knobs
# --------------------------------------------------------------------------------------------

_BLOCK_DEALS = 10_000  # deals per block; changing it changes the data (per-block seeds)
_P_STALL = 0.012  # per stage: the deal is abandoned open in the CRM
_P_REGRESS = 0.05  # per advance: back one CRM stage instead
_P_SKIP = 0.08  # per advance: jump over one CRM stage
_P_START_LATER = 0.12  # created directly in the second CRM stage
_P_NO_COMPANY = 0.06  # New Business / Partner deals without a company
_P_AFTER_CLOSE = 0.15  # closed deals with follow-up activities after the close
_P_OTHER_OWNER_ACTIVITY = 0.12  # activity logged by another rep (SDR, SE)
_MARKETING_COST_PER_DEAL = 260.0  # USD, sets the scale of the spend file
_SALES_COST_PER_DEAL = 420.0

_DAY = 86_400
_CURRENCY_CUTS = (62, 85)  # company region: < 62 USD, < 85 EUR, else GBP (out of 100)


def _company_currency(company_no: int) -> str:
    """Region currency of a company, a fixed function of its number."""
    bucket = (company_no * 2_654_435_761) % 1_000_003 % 100
    if bucket < _CURRENCY_CUTS[0]:
        return "USD"
    return "EUR" if bucket < _CURRENCY_CUTS[1] else "GBP"


def _company_name(company_no: int) -> str:
    """A readable company name, a fixed function of its number (no lookup table)."""
    a = _COMPANY_WORDS_A[company_no % len(_COMPANY_WORDS_A)]
    rest = company_no // len(_COMPANY_WORDS_A)
    b = _COMPANY_WORDS_B[rest % len(_COMPANY_WORDS_B)]
    rest //= len(_COMPANY_WORDS_B)
    suffix = _COMPANY_SUFFIXES[rest % len(_COMPANY_SUFFIXES)]
    rest //= len(_COMPANY_SUFFIXES)
    return f"{a} {b} {suffix}" if rest == 0 else f"{a} {b} {rest + 1} {suffix}"


def _cumulative(weights: list[float]) -> list[float]:
    """Cumulative weights normalised to 1, for bisect-free sampling in the hot loop."""
    total = sum(weights)
    out, acc = [], 0.0
    for w in weights:
        acc += w
        out.append(acc / total)
    out[-1] = 1.0
    return out


def _pick(cum: list[float], items: tuple | list, r: float):
    """Item whose cumulative weight first exceeds r."""
    for c, item in zip(cum, items, strict=True):
        if r < c:
            return item
    return items[-1]


class _Clock:
    """Timestamp strings from integer seconds since `start` 00:00:00 UTC, without datetime."""

    def __init__(self, start: date, n_days: int) -> None:
        two = [f"{i:02d}" for i in range(60)]
        self.days = [(start + timedelta(days=d)).isoformat() for d in range(n_days + 1)]
        self.day_t = [d + "T" for d in self.days]
        self.tods = [f"{h}:{m}:{s}Z" for h in two[:24] for m in two for s in two]


_CLOCKS: dict[tuple[date, int], _Clock] = {}


def _clock(start: date, n_days: int) -> _Clock:
    """Per-process cache of the timestamp tables."""
    key = (start, n_days)
    if key not in _CLOCKS:
        _CLOCKS.clear()
        _CLOCKS[key] = _Clock(start, n_days)
    return _CLOCKS[key]


def _block_rng(seed: int, block_no: int) -> random.Random:
    """Generator of one block: str seeds go through SHA-512, stable across runs and platforms."""
    return random.Random(f"sample-data:{seed}:deals:{block_no}")


@dataclass(frozen=True, slots=True)
class _PipeTables:
    """One pipeline as tuples indexed by CRM stage, so the per-deal steps index, never look up."""

    name: str
    names: tuple[str, ...]
    orders: tuple[int, ...]
    means: tuple[float, ...]
    p_lost: tuple[float, ...]
    p_stall: tuple[float, ...]
    won_stage: str
    lost_stage: str
    amount_median: float
    products: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Block:
    """Generator, lookup tables and time bounds shared by every deal of one block."""

    rnd: Callable[[], float]
    gauss: Callable[..., float]
    n_days: int
    n_companies: int
    wd0: int
    end_ts: int
    rename_ts: int
    day_t: list[str]
    tods: list[str]
    pipe_cum: list[float]
    new_business: _PipeTables
    expansion: _PipeTables
    partner: _PipeTables
    ls_names: tuple[str, ...]
    ls_cum: list[float]
    owners_by_cur: dict[str, list[tuple[str, str, str]]]
    region_cum: list[float]
    all_owner_ids: list[str]


class _Customer(NamedTuple):
    """Who a deal is with and who owns it."""

    company_id: str
    currency: str
    owner: tuple[str, str, str]
    deal_name: str


class _Walk(NamedTuple):
    """Where a deal's stage walk ended."""

    changes: list[tuple[int, int]]  # (stage index, seconds): the history rows before the close
    status: str
    end_t: int  # the close time; meaningless while the deal is open
    max_order: int


class _Close(NamedTuple):
    """A deal's final stage and the timestamps that bound its activities."""

    stage: str
    closed: int  # -1 keeps "open" cheap to test in the activity step
    closed_s: str
    updated: int
    act_hi: int


def _block_setup(seed: int, block_no: int, start: date, n_days: int, n_companies: int) -> _Block:
    """Block generator and lookup tables, built once per block so the per-deal steps only index."""
    rng = _block_rng(seed, block_no)
    clock = _clock(start, n_days)
    pipes = [
        _PipeTables(
            name=p.name,
            names=tuple(s.name for s in p.stages),
            orders=tuple(FUNNEL_ORDER[s.funnel_stage] for s in p.stages),
            means=tuple(s.mean_days * _DAY for s in p.stages),
            p_lost=tuple(s.p_lost for s in p.stages),
            p_stall=tuple(s.p_lost + _P_STALL for s in p.stages),
            won_stage=p.won_stage,
            lost_stage=p.lost_stage,
            amount_median=p.amount_median,
            products=p.products,
        )
        for p in PIPELINES
    ]
    new_business, expansion, partner = pipes
    return _Block(
        rnd=rng.random,
        gauss=rng.gauss,
        n_days=n_days,
        n_companies=n_companies,
        wd0=start.weekday(),
        end_ts=n_days * _DAY - 1,
        rename_ts=(n_days // 2) * _DAY,
        day_t=clock.day_t,
        tods=clock.tods,
        pipe_cum=_cumulative([p.weight for p in PIPELINES]),
        new_business=new_business,
        expansion=expansion,
        partner=partner,
        ls_names=tuple(name for name, _ in _GENERAL_LEAD_SOURCES),
        ls_cum=_cumulative([w for _, w in _GENERAL_LEAD_SOURCES]),
        owners_by_cur={c: [o for o in OWNERS if o[2] == c] for c in CURRENCIES},
        region_cum=_cumulative([62, 23, 15]),
        all_owner_ids=[o[0] for o in OWNERS],
    )


def _draw_pipeline(b: _Block) -> _PipeTables:
    """Pipeline of the next deal, by the configured pipeline weights."""
    r = b.rnd()
    cum = b.pipe_cum
    return b.new_business if r < cum[0] else b.expansion if r < cum[1] else b.partner


def _draw_created(b: _Block) -> int:
    """Creation time (seconds): volume doubles over the period and avoids weekends and nights."""
    rnd = b.rnd
    day = int((math.sqrt(1.0 + 3.0 * rnd()) - 1.0) * b.n_days)
    wd = (day + b.wd0) % 7
    if wd >= 5 and rnd() < 0.85:
        day = day - (wd - 4) if day >= wd - 4 else day + (7 - wd)
    created = day * _DAY + 28_800 + int(rnd() * 36_000)
    if created > b.end_ts:
        created = b.end_ts - int(rnd() * 36_000)
    return created


def _draw_customer(b: _Block, pipe: _PipeTables, deal_no: int) -> _Customer:
    """Company, region and owner; expansions reuse big accounts, some deals have no company."""
    rnd = b.rnd
    if pipe is b.expansion:
        company_no = int(b.n_companies * 0.3 * rnd() ** 1.2)
    elif rnd() < _P_NO_COMPANY:
        company_no = -1
    else:
        company_no = int(b.n_companies * rnd() ** 1.3)
    if company_no < 0:
        currency = _pick(b.region_cum, CURRENCIES, rnd())
        regional = b.owners_by_cur[currency]
        owner = regional[int(rnd() * len(regional))]
        return _Customer("", currency, owner, f"Inbound enquiry #{deal_no}")
    currency = _company_currency(company_no)
    regional = b.owners_by_cur[currency]
    if rnd() < 0.8:  # most deals go to the account owner, so accounts look owned
        owner = regional[company_no % len(regional)]
    else:
        owner = regional[int(rnd() * len(regional))]
    product = pipe.products[int(rnd() * len(pipe.products))]
    deal_name = f"{_company_name(company_no)} - {product}"
    return _Customer(f"C{100_000 + company_no}", currency, owner, deal_name)


def _draw_lead_source(b: _Block, pipe: _PipeTables) -> str:
    """Lead source; expansions are often untagged and partner deals mostly say "Partner"."""
    rnd = b.rnd
    if pipe is b.expansion and rnd() < 0.6:
        return ""
    if pipe is b.partner and rnd() < 0.7:
        return "Partner"
    return _pick(b.ls_cum, b.ls_names, rnd())


def _walk_stages(b: _Block, pipe: _PipeTables, created: int) -> _Walk:
    """Stage walk with skips, regressions, stalls and losses, until closed or the period ends."""
    rnd = b.rnd
    log = math.log
    orders, means, p_lost, p_stall = pipe.orders, pipe.means, pipe.p_lost, pipe.p_stall
    n_st = len(pipe.names)
    end_ts = b.end_ts
    idx = 1 if rnd() < _P_START_LATER else 0
    t = created
    changes = [(idx, t)]
    regressions = 0
    status = "open"
    max_order = orders[idx]
    while True:
        t += int(-log(1.0 - rnd()) * means[idx]) + 300
        if t > end_ts:
            break
        r = rnd()
        if r < p_stall[idx]:
            if r < p_lost[idx]:
                status = "lost"
            break
        r = rnd()
        if r < _P_REGRESS and idx > 0 and regressions < 2:
            idx -= 1
            regressions += 1
        elif r < _P_REGRESS + _P_SKIP:
            idx += 2
        else:
            idx += 1
        if idx >= n_st:
            status = "won"
            break
        changes.append((idx, t))
        if orders[idx] > max_order:
            max_order = orders[idx]
    return _Walk(changes, status, t, max_order)


def _draw_close(b: _Block, pipe: _PipeTables, walk: _Walk) -> _Close:
    """Final stage and last update; open deals keep getting activities for 30 days after a move."""
    rnd = b.rnd
    if walk.status == "open":
        last_idx, last_change = walk.changes[-1]
        updated = last_change + int(rnd() * rnd() * 20 * _DAY)
        act_hi = min(b.end_ts, last_change + 30 * _DAY)
        return _Close(pipe.names[last_idx], -1, "", min(updated, b.end_ts), act_hi)
    t = walk.end_t
    stage = pipe.won_stage if walk.status == "won" else pipe.lost_stage
    closed_s = b.day_t[t // _DAY] + b.tods[t % _DAY]
    updated = t if rnd() < 0.7 else t + int(rnd() * 5 * _DAY)
    return _Close(stage, t, closed_s, min(updated, b.end_ts), t)


def _history_rows(
    b: _Block, deal_id: str, pipe: _PipeTables, walk: _Walk, close: _Close
) -> list[tuple[str, str, str]]:
    """Stage history rows: every open stage entered, then the won / lost stage if closed."""
    day_t, tods, names = b.day_t, b.tods, pipe.names
    rows = [(deal_id, names[i], day_t[ct // _DAY] + tods[ct % _DAY]) for i, ct in walk.changes]
    if close.closed >= 0:
        rows.append((deal_id, close.stage, close.closed_s))
    return rows


def _draw_amount(b: _Block, pipe: _PipeTables, walk: _Walk) -> str:
    """Amount: log-normal around the pipeline median, often round, often unset on early deals."""
    rnd = b.rnd
    if walk.status != "won" and walk.max_order <= 3 and rnd() < 0.25:
        return ""
    value = pipe.amount_median * math.exp(0.75 * b.gauss())
    if rnd() < 0.7:
        return f"{round(value, -2) or 100.0:.2f}"
    return f"{value:.2f}"


def _deal_row(
    b: _Block,
    deal_id: str,
    pipe: _PipeTables,
    customer: _Customer,
    lead_source: str,
    created: int,
    walk: _Walk,
    close: _Close,
    amount: str,
) -> tuple[str, ...]:
    """The deals.csv row; the renamed owner's new name shows on deals updated after the rename."""
    owner_id, owner_name, _ = customer.owner
    if owner_id == _RENAMED_OWNER[0] and close.updated >= b.rename_ts:
        owner_name = _RENAMED_OWNER[1]
    day_t, tods, updated = b.day_t, b.tods, close.updated
    return (
        deal_id,
        customer.deal_name,
        pipe.name,
        close.stage,
        walk.status,
        amount,
        customer.currency,
        owner_id,
        owner_name,
        customer.company_id,
        lead_source,
        day_t[created // _DAY] + tods[created % _DAY],
        close.closed_s,
        day_t[updated // _DAY] + tods[updated % _DAY],
    )


def _draw_activity_times(b: _Block, created: int, walk: _Walk, close: _Close) -> list[int]:
    """Activity times: more for deals that went further, some follow-ups after the close."""
    rnd = b.rnd
    n_acts = len(walk.changes) + int(rnd() * 4.0) - 1
    span = close.act_hi - created
    times = sorted(created + int(rnd() * span) for _ in range(n_acts)) if n_acts > 0 else []
    closed = close.closed
    if closed >= 0 and rnd() < _P_AFTER_CLOSE:
        for _ in range(1 + int(rnd() * 2.0)):
            ta = closed + 3_600 + int(rnd() * 20 * _DAY)
            if ta <= b.end_ts:
                times.append(ta)
    return times


def _draw_activity_rows(
    b: _Block, deal_no: int, deal_id: str, owner_id: str, times: list[int]
) -> list[tuple[str, str, str, str, str]]:
    """activities.csv rows: mostly emails, some logged by another rep (an SDR or SE)."""
    rnd = b.rnd
    day_t, tods = b.day_t, b.tods
    all_owner_ids = b.all_owner_ids
    n_owner_ids = len(all_owner_ids)
    act_base = deal_no * 100  # ids stay unique and stable whatever the block size
    rows = []
    for k, ta in enumerate(times):
        r = rnd()
        kind = "email" if r < 0.5 else "call" if r < 0.8 else "meeting"
        by = owner_id
        if rnd() < _P_OTHER_OWNER_ACTIVITY:
            by = all_owner_ids[int(rnd() * n_owner_ids)]
        at = day_t[ta // _DAY] + tods[ta % _DAY]
        rows.append((f"A{act_base + k:09d}", deal_id, kind, at, by))
    return rows


def _generate_block(
    seed: int, block_no: int, first_deal: int, n: int, start: date, n_days: int, n_companies: int
) -> tuple[bytes, bytes, bytes, int, int]:
    """CSV bytes (no header) of deals, stage history and activities for one block of deals."""
    b = _block_setup(seed, block_no, start, n_days, n_companies)
    deals: list[tuple] = []
    hist: list[tuple] = []
    acts: list[tuple] = []
    # All steps share one generator: their order is part of the output, like the seed.
    for deal_no in range(first_deal + 1, first_deal + n + 1):
        deal_id = f"D{deal_no:07d}"
        pipe = _draw_pipeline(b)
        created = _draw_created(b)
        customer = _draw_customer(b, pipe, deal_no)
        lead_source = _draw_lead_source(b, pipe)
        walk = _walk_stages(b, pipe, created)
        close = _draw_close(b, pipe, walk)
        hist.extend(_history_rows(b, deal_id, pipe, walk, close))
        amount = _draw_amount(b, pipe, walk)
        row = _deal_row(b, deal_id, pipe, customer, lead_source, created, walk, close, amount)
        deals.append(row)
        times = _draw_activity_times(b, created, walk, close)
        acts.extend(_draw_activity_rows(b, deal_no, deal_id, customer.owner[0], times))
    return (
        _csv_bytes(deals),
        _csv_bytes(hist),
        _csv_bytes(acts),
        len(hist),
        len(acts),
    )


def _csv_bytes(rows: list[tuple]) -> bytes:
    """Rows as UTF-8 CSV bytes, quoting only where needed, LF line ends."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue().encode("utf-8")


def _spend_rows(seed: int, start: date, n_days: int, deals_per_day: float) -> Iterator[tuple]:
    """Daily marketing spend per channel and monthly sales spend, scaled to the deal volume."""
    rng = random.Random(f"sample-data:{seed}:spend")
    rnd = rng.random
    mkt = _MARKETING_COST_PER_DEAL * deals_per_day  # USD per day, on average
    sales_month = _SALES_COST_PER_DEAL * deals_per_day * 30.4

    def money(x: float) -> str:
        return f"{max(x, 1.0):.2f}"

    webinar_days: set[int] = set()
    referral_days: set[int] = set()
    for d in range(n_days):
        day = start + timedelta(days=d)
        iso = day.isoformat()
        # follow the deal volume (x2 over the period), quieter at weekends
        level = (1.0 + d / n_days) / 1.5 * (0.45 if day.weekday() >= 5 else 1.12)
        if day.day == 1 or d == 0:  # a month starts (or the period starts mid-month)
            month_len = ((day.replace(day=28) + timedelta(days=4)).replace(day=1) - day).days
            webinar_days = {d + int(rnd() * month_len) for _ in range(2)}
            referral_days = {d + int(rnd() * month_len) for _ in range(3)}
            sales_level = 1.0 + d / n_days
            yield (iso, "", "sales", money(sales_month * 0.62 * sales_level / 1.5), "USD")
            yield (iso, "", "sales", money(sales_month * 0.18 * sales_level / 1.5), "EUR")
            yield (iso, "", "sales", money(sales_month * 0.14 * sales_level / 1.5), "GBP")
            yield (iso, "organic_search", "marketing", money(mkt * 30.4 * 0.08), "USD")
            yield (iso, "outbound", "marketing", money(mkt * 30.4 * 0.10), "USD")
            if day.month in (1, 4, 7, 10):
                yield (iso, "partner", "marketing", money(mkt * 91 * 0.06), "EUR")
        noise = 0.75 + 0.5 * rnd()
        yield (iso, "google_ads", "marketing", money(mkt * 0.30 * level * noise), "USD")
        if rnd() < 0.08:  # a second campaign booked separately: same key, added up downstream
            yield (iso, "google_ads", "marketing", money(mkt * 0.04 * level * rnd()), "USD")
        yield (iso, "google_ads", "marketing", money(mkt * 0.09 * level * noise), "EUR")
        yield (iso, "linkedin", "marketing", money(mkt * 0.14 * level * (0.7 + 0.6 * rnd())), "USD")
        if day.weekday() < 5:
            yield (iso, "linkedin", "marketing", money(mkt * 0.05 * (0.7 + 0.6 * rnd())), "GBP")
        if d in webinar_days:
            yield (iso, "webinar", "marketing", money(mkt * 1.5 * (0.8 + 0.4 * rnd())), "USD")
        if d in referral_days:
            yield (iso, "referral", "marketing", money(mkt * 1.0 * (0.5 + rnd())), "USD")


def _write_header(f: BinaryIO, columns: tuple[str, ...]) -> None:
    """Header line in the canonical column order."""
    f.write((",".join(columns) + "\n").encode("utf-8"))


def generate(
    out_dir: Path,
    n_deals: int,
    seed: int = 42,
    start: date = date(2024, 1, 1),
    end: date = date(2026, 6, 30),
    workers: int | None = None,
    awkward: bool = False,
) -> dict[str, int]:
    """Write the four canonical CSV files for `n_deals` sample deals; return rows per file.

    Every event lies between `start` 00:00:00 and `end` 23:59:59 UTC. `workers` (default: up to
    2 processes) only changes the speed, never the bytes written; workers are spawned, so a
    calling script needs the usual `if __name__ == "__main__":` guard. `awkward` appends the
    hand-made AWKWARD_DEALS (dated 2025: keep `start` and `end` around that year), whose
    pipelines need `awkward_stage_mapping()` in the stage mapping.
    """
    if n_deals < 0:
        raise ValueError(f"n_deals must be >= 0, got {n_deals}")
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n_days = (end - start).days + 1
    n_companies = max(20, n_deals * 2 // 5)
    block = _BLOCK_DEALS
    tasks = [
        (seed, b, first, min(block, n_deals - first), start, n_days, n_companies)
        for b, first in enumerate(range(0, n_deals, block))
    ]
    if workers is None:
        workers = min(2, os.cpu_count() or 1)
    workers = max(1, min(workers, len(tasks)))

    counts = {name: 0 for name in FILE_COLUMNS}
    with ExitStack() as stack:
        files = {name: stack.enter_context(open(out_dir / name, "wb")) for name in FILE_COLUMNS}
        for name, f in files.items():
            _write_header(f, FILE_COLUMNS[name])

        def write(result: tuple[bytes, bytes, bytes, int, int], n: int) -> None:
            deals_b, hist_b, acts_b, n_hist, n_acts = result
            files["deals.csv"].write(deals_b)
            files["deal_stage_history.csv"].write(hist_b)
            files["activities.csv"].write(acts_b)
            counts["deals.csv"] += n
            counts["deal_stage_history.csv"] += n_hist
            counts["activities.csv"] += n_acts

        if workers == 1:
            for task in tasks:
                write(_generate_block(*task), task[3])
        else:
            # spawn, not fork: safe inside a multi-threaded host such as an Airflow worker.
            with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
                window: deque[tuple[Future, int]] = deque()
                for task in tasks:
                    window.append((pool.submit(_generate_block, *task), task[3]))
                    if len(window) >= 2 * workers:  # bounded: memory stays flat
                        fut, n = window.popleft()
                        write(fut.result(), n)
                while window:
                    fut, n = window.popleft()
                    write(fut.result(), n)
        if awkward:
            deals_rows, hist_rows, act_rows = _awkward_rows()
            write(
                (
                    _csv_bytes(deals_rows),
                    _csv_bytes(hist_rows),
                    _csv_bytes(act_rows),
                    len(hist_rows),
                    len(act_rows),
                ),
                len(deals_rows),
            )

        spend = io.TextIOWrapper(files["spend.csv"], encoding="utf-8", newline="")
        writer = csv.writer(spend, lineterminator="\n")
        for row in _spend_rows(seed, start, n_days, max(n_deals, 1) / n_days):
            writer.writerow(row)
            counts["spend.csv"] += 1
        spend.flush()
        spend.detach()  # the ExitStack closes the underlying file
    return counts


# --------------------------------------------------------------------------------------------
# The next night's changes (incremental nights: tests/test_incremental_night.py, benchmarks)
# --------------------------------------------------------------------------------------------


def write_changes(
    landing_dir: Path,
    out_dir: Path,
    *,
    fraction: float,
    night: str,
    since: str,
    seed: int = 7,
) -> dict[str, int]:
    """Write the files a CRM export of one day's changes would bring, for `fraction` of the
    deals in `landing_dir`'s files (deals*.csv, activities*.csv: the earlier deliveries),
    as `deals_<night>.csv`, `deal_stage_history_<night>.csv` and `activities_<night>.csv`
    in `out_dir`. Every change is dated in (`since`, `since` + 1 day] (ISO dates), and the
    same arguments write the same bytes. Returns the number of changes of each kind.

    Of the changed deals: open ones are won or lost (a stage change to the pipeline's won or
    lost stage, an activity); closed ones get an amount correction; every tenth moves to the
    company of another changed deal (a customer's first win moves); one in twenty gets an
    activity moved to it from another deal. New deals, a quarter as many as the changed,
    open in the pipeline's first stage.
    """
    landing_dir, out_dir = Path(landing_dir), Path(out_dir)
    day = date.fromisoformat(since)
    rng = random.Random(f"{seed}:{night}")

    def moment() -> str:
        second = rng.randrange(1, 86_400)
        return f"{day}T{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}Z"

    deals: dict[str, list[str]] = {}
    won_stage: dict[str, str] = {}
    lost_stage: dict[str, str] = {}
    first_stage: dict[str, str] = {}
    for path in sorted(landing_dir.rglob("deals*.csv")):
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            next(reader)
            for row in reader:
                deals[row[0]] = row
                status, pipeline, stage = row[4], row[2], row[3]
                if status == "won":
                    won_stage.setdefault(pipeline, stage)
                elif status == "lost":
                    lost_stage.setdefault(pipeline, stage)
    # Each pipeline's first stage: the first history row of its first deal in the files.
    pipelines = {row[2] for row in deals.values()}
    for path in sorted(landing_dir.rglob("deal_stage_history*.csv")):
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            next(reader)
            for deal_id, stage, _ in reader:
                if deal_id in deals:
                    first_stage.setdefault(deals[deal_id][2], stage)
                if first_stage.keys() >= pipelines:
                    break
    activities: list[list[str]] = []
    for path in sorted(landing_dir.rglob("activities*.csv")):
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            next(reader)
            for i, row in enumerate(reader):
                if i % 997 == 0:
                    activities.append(row)

    ids = sorted(deals)
    chosen = sorted(rng.sample(ids, max(1, round(len(ids) * fraction))))
    deal_rows, history_rows, activity_rows = [], [], []
    counts = dict.fromkeys(("closed", "corrected", "customer_moved", "activity_moved", "new"), 0)
    for n, deal_id in enumerate(chosen):
        row = list(deals[deal_id])
        at = moment()
        if row[4] == "open":
            won = rng.random() < 0.5
            pipeline = row[2]
            stage = (won_stage if won else lost_stage).get(pipeline)
            if stage is None:
                continue
            row[3], row[4], row[12] = stage, "won" if won else "lost", at
            history_rows.append((deal_id, stage, at))
            activity_rows.append((f"A{night}{n:08d}", deal_id, "call", at, row[7] or "U1000"))
            counts["closed"] += 1
        else:
            amount = float(row[5] or 0) * (1 + rng.choice((-0.1, 0.05, 0.2)))
            row[5] = f"{amount:.2f}"
            counts["corrected"] += 1
        if n % 10 == 3 and len(chosen) > 1:
            other = deals[chosen[(n + 1) % len(chosen)]]
            if other[9]:
                row[9] = other[9]
                counts["customer_moved"] += 1
        if n % 20 == 7 and activities:
            moved = list(activities[n % len(activities)])
            moved[1] = deal_id
            activity_rows.append(tuple(moved))
            counts["activity_moved"] += 1
        row[13] = at
        deal_rows.append(tuple(row))
    for n in range(max(1, len(chosen) // 4)):
        template = deals[ids[rng.randrange(len(ids))]]
        pipeline, at = template[2], moment()
        stage = first_stage.get(pipeline)
        if stage is None:
            continue
        deal_id = f"N{night}{n:07d}"
        deal_rows.append(
            (
                deal_id,
                f"New deal {n}",
                pipeline,
                stage,
                "open",
                template[5],
                template[6],
                template[7],
                template[8],
                template[9],
                template[10],
                at,
                "",
                at,
            )
        )
        history_rows.append((deal_id, stage, at))
        counts["new"] += 1
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, columns, rows in (
        ("deals", DEALS_COLUMNS, deal_rows),
        ("deal_stage_history", STAGE_HISTORY_COLUMNS, history_rows),
        ("activities", ACTIVITIES_COLUMNS, activity_rows),
    ):
        with (out_dir / f"{name}_{night}.csv").open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(columns)
            writer.writerows(rows)
    return counts


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: generate the files and print row counts and wall time."""
    parser = argparse.ArgumentParser(
        prog="python -m devkit.sample_data",
        description="Write deterministic sample CRM data in the canonical CSV format.",
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--deals", type=int, required=True, help="number of deals")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2024, 1, 1))
    parser.add_argument("--end", type=date.fromisoformat, default=date(2026, 6, 30))
    parser.add_argument(
        "--workers", type=int, default=None, help="processes (default: up to 2); same output"
    )
    parser.add_argument(
        "--awkward",
        action="store_true",
        help="append the hand-made awkward deals (their stages: awkward_stage_mapping())",
    )
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    counts = generate(
        args.out, args.deals, args.seed, args.start, args.end, args.workers, args.awkward
    )
    elapsed = time.perf_counter() - t0
    for name, n in counts.items():
        print(f"{name}: {n} rows")
    print(f"written to {args.out} in {elapsed:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
