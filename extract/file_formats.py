"""How a source writes its files: delimiter, encoding, number and date conventions.

A file source declares its conventions once in the pipeline config (`format:`); every
value is then read under exactly that declaration. A value that does not parse under it
is quarantined with the column and the reason, never guessed: with no date format
declared only ISO-8601 is read, and when several formats are declared a value that reads
as different dates under two of them (03/04/2026 under %d/%m/%Y and %m/%d/%Y) is
quarantined as ambiguous.

Typed columns are normalized at load: raw then holds plain decimals (`1234.50`), ISO dates
(`2026-04-03`) and UTC timestamps (`2026-04-03T08:15:00.000000Z`), whatever the file wrote,
so staging casts one way for every source. The file itself is kept as delivered.

Typed values are also range-checked at load (`Plausible`): a date or timestamp outside a
window around the night's as-of time (by default 30 years before to 5 years after) and
an amount the warehouse cannot sum exactly are quarantined with the column and the reason,
so that `9999-12-31` or `1e40` never reaches a mart. ISO-8601 is read strictly: four-digit
years, hours 00-23, offsets within +-14:00, `Z` or a numeric offset only (no zone names).
"""

from __future__ import annotations

import codecs
import csv
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from extract.errors import LoadError

TEXT = "text"
NUMBER = "number"
DATE = "date"
TIMESTAMP = "timestamp"
KINDS = (TEXT, NUMBER, DATE, TIMESTAMP)

_THOUSANDS = {",", ".", " ", "'", "none"}
_DECIMALS = {".", ","}
# Spaces a spreadsheet writes as thousands separators: no-break and narrow no-break space.
_SPACES = "\u00a0\u202f\u2009"


@dataclass(frozen=True)
class FileFormat:
    """A source's file conventions. The defaults are the canonical format's."""

    delimiter: str = ","
    quote: str = '"'
    encoding: str = "utf-8"
    decimal_separator: str = "."
    thousands_separator: str | None = None
    date_formats: tuple[str, ...] = ()  # strptime formats; () = ISO-8601 only
    timestamp_formats: tuple[str, ...] = ()  # strptime formats; () = ISO-8601 only
    timezone: str = "UTC"  # for timestamps written without an offset
    header_line: int = 1  # line of the header row; the lines above it are a preamble

    @property
    def is_utf8(self) -> bool:
        return codecs.lookup(self.encoding).name in ("utf-8", "utf-8-sig")

    def describe_number(self) -> str:
        thousands = {None: "none", " ": "space"}.get(
            self.thousands_separator, repr(self.thousands_separator)
        )
        return f"decimal {self.decimal_separator!r}, thousands {thousands}"


CANONICAL = FileFormat()

# Strict ISO-8601 as text, before DuckDB reads it (DuckDB alone also takes hour 24, a
# five-digit year, offsets past +-14:00 and zone names such as `Europe/Berlin` or `CET`).
_ISO_DATE = r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"
_ISO_ZONE = r"(Z|z|[+-](0\d|1[0-4])(:?[0-5]\d)?)"
ISO_TIMESTAMP = (
    _ISO_DATE + r"([T ]([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,9})?)?\s?" + _ISO_ZONE + "?)?"
)
ISO_DATE = _ISO_DATE

# The widest amount a raw value may hold: the warehouse keeps amounts as numeric(38, 6)
# and divides sums of them at 16 decimal places (dbt_project/macros/money.sql), so a
# million amounts below 10^15 still sum exactly.
MAX_AMOUNT = Decimal(10) ** 15
PLAUSIBLE_YEARS_BEFORE = 30
PLAUSIBLE_YEARS_AFTER = 5


@dataclass(frozen=True)
class Plausible:
    """The range a typed value must fall in to load: dates and timestamps on the days
    `earliest` to `latest` (inclusive), amounts below `max_amount` in absolute value."""

    earliest: date
    latest: date
    max_amount: Decimal = MAX_AMOUNT

    @classmethod
    def around(
        cls,
        as_of: datetime,
        *,
        years_before: int = PLAUSIBLE_YEARS_BEFORE,
        years_after: int = PLAUSIBLE_YEARS_AFTER,
        max_amount: Decimal = MAX_AMOUNT,
    ) -> Plausible:
        """The window around a night's as-of date (its day, give or take whole years)."""
        day = as_of.date()
        return cls(_years_from(day, -years_before), _years_from(day, years_after), max_amount)

    def describe_dates(self) -> str:
        return f"{self.earliest.isoformat()} to {self.latest.isoformat()}"


def _years_from(day: date, years: int) -> date:
    """The same day `years` years away (29 February becomes the 28th in other years)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def validate_plausible(value: Any, where: Any, key: str = "plausible") -> dict:
    """The `plausible:` mapping of a file source's config: years_before, years_after (the
    date window around the as-of) and max_amount."""
    raw = where.mapping(value or {}, key, optional={"years_before", "years_after", "max_amount"})
    out: dict[str, Any] = {}
    for name, default in (
        ("years_before", PLAUSIBLE_YEARS_BEFORE),
        ("years_after", PLAUSIBLE_YEARS_AFTER),
    ):
        years = raw.get(name, default)
        if isinstance(years, bool) or not isinstance(years, int) or not 0 <= years <= 200:
            raise where.error(
                f"{key}.{name}", f"must be a whole number of years 0-200, got {years!r}"
            )
        out[name] = years
    amount = raw.get("max_amount", MAX_AMOUNT)
    try:
        amount = Decimal(str(amount))
    except ArithmeticError:
        amount = Decimal(-1)
    if isinstance(raw.get("max_amount"), bool) or not 0 < amount <= MAX_AMOUNT:
        raise where.error(
            f"{key}.max_amount",
            f"must be a number above 0 and at most 10^15, got {raw.get('max_amount')!r}",
        )
    out["max_amount"] = amount
    return out


FORMAT_KEYS = {
    "delimiter",
    "quote",
    "encoding",
    "decimal_separator",
    "thousands_separator",
    "date_format",
    "date_formats",
    "timestamp_format",
    "timestamp_formats",
    "timezone",
    "header_line",
}


def validate_format(value: Any, where: Any, key: str = "format") -> FileFormat:
    """The `format:` mapping of a file source's config, checked key by key."""
    if value is None:
        return CANONICAL
    raw = where.mapping(value, key, optional=FORMAT_KEYS)
    delimiter = raw.get("delimiter", ",")
    if delimiter == "tab" or delimiter == "\\t":
        delimiter = "\t"
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '\r\n"':
        raise where.error(f"{key}.delimiter", f"must be one character or 'tab', got {delimiter!r}")
    quote = raw.get("quote", '"')
    if quote not in ('"', "'"):
        raise where.error(f"{key}.quote", f"must be '\"' or \"'\", got {quote!r}")
    encoding = where.string(raw.get("encoding", "utf-8"), f"{key}.encoding")
    try:
        info = codecs.lookup(encoding)
    except LookupError:
        raise where.error(f"{key}.encoding", f"unknown encoding {encoding!r}") from None
    if info.name not in ("utf-8", "utf-8-sig") and len("\n".encode(info.name)) != 1:
        raise where.error(
            f"{key}.encoding",
            f"{encoding!r} is not ASCII-compatible; use UTF-8 or a single-byte encoding "
            "(latin-1, windows-1251, windows-1252, ...)",
        )
    decimal = raw.get("decimal_separator", ".")
    if decimal not in _DECIMALS:
        raise where.error(f"{key}.decimal_separator", f"must be '.' or ',', got {decimal!r}")
    thousands = raw.get("thousands_separator", "none")
    if thousands == "space":
        thousands = " "
    if thousands not in _THOUSANDS:
        raise where.error(
            f"{key}.thousands_separator",
            f"must be one of ',', '.', ' ' (or 'space'), \"'\" or 'none', got {thousands!r}",
        )
    thousands = None if thousands == "none" else thousands
    if thousands == decimal:
        raise where.error(f"{key}.thousands_separator", "must differ from decimal_separator")
    # A thousands separator equal to the delimiter ("1,234.50" in a comma file) needs the
    # amount quoted, as spreadsheets write it; an unquoted one has too many fields and is
    # quarantined by the loader.
    tz = where.string(raw.get("timezone", "UTC"), f"{key}.timezone")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise where.error(f"{key}.timezone", f"unknown time zone {tz!r}") from None
    header_line = raw.get("header_line", 1)
    if isinstance(header_line, bool) or not isinstance(header_line, int) or header_line < 1:
        raise where.error(f"{key}.header_line", f"must be a line number >= 1, got {header_line!r}")
    return FileFormat(
        delimiter=delimiter,
        quote=quote,
        encoding=info.name,
        decimal_separator=decimal,
        thousands_separator=thousands,
        date_formats=_formats(raw, where, key, "date"),
        timestamp_formats=_formats(raw, where, key, "timestamp"),
        timezone=tz,
        header_line=header_line,
    )


def _formats(raw: dict, where: Any, key: str, kind: str) -> tuple[str, ...]:
    one, many = f"{kind}_format", f"{kind}_formats"
    if one in raw and many in raw:
        raise where.error(f"{key}.{one}", f"give {one} or {many}, not both")
    values = [raw[one]] if one in raw else raw.get(many, [])
    if not isinstance(values, list) or not all(isinstance(v, str) and "%" in v for v in values):
        raise where.error(f"{key}.{many if many in raw else one}", "must be strptime format(s)")
    return tuple(values)


# -- SQL over a file's text values ------------------------------------------------------


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _trimmed(col: str) -> str:
    """The value with every kind of space at the ends removed, NULL when blank."""
    # translate() only for a value holding one of those spaces (a few `contains` cost a
    # tenth of a translate over every value; 1,000,000 deals: about 2 s of a night's load).
    spaced = " or ".join(f'contains("{col}", chr({ord(space)}))' for space in _SPACES)
    return (
        f"""nullif(trim(case when {spaced} then translate("{col}", {_sql_text(_SPACES)}, '   ')"""
        f""" else "{col}" end), '')"""
    )


def number_pattern(fmt: FileFormat) -> str:
    """RE2 pattern of an amount under the format: sign, digits, an optional currency."""
    d = re.escape(fmt.decimal_separator)
    digits = rf"\d+(?:{d}\d+)?"
    if fmt.thousands_separator:
        t = re.escape(fmt.thousands_separator)
        digits = rf"\d{{1,3}}(?:{t}\d{{3}})+(?:{d}\d+)?|{digits}"
    currency = r"(?:\p{Sc}|[A-Z]{3}|руб\.?|р\.)"
    return rf"^(?:{currency}\s?)?([-+]?)\s?(?:{currency}\s?)?({digits})(?:\s?{currency})?$"


@dataclass(frozen=True)
class TypedSql:
    """How one text column is read under a format, as SQL in three steps, so that no
    reading is written (or computed) twice: `value`, the trimmed text (alias `<col>__v`);
    `readings` over it (aliases `<col>__*`); then `normalized` and `reason` over those."""

    value: tuple[str, str] | None
    readings: tuple[tuple[str, str], ...]
    normalized: str
    reason: str | None


def typed_select_items(typed: Iterable[TypedSql]) -> tuple[list[str], list[str], str]:
    """The SELECT items of the steps of TypedSql, for several columns: the trimmed
    values, the readings over them, and the SQL of their reasons joined with '; '."""
    typed = list(typed)
    values = [f'{t.value[1]} as "{t.value[0]}"' for t in typed if t.value]
    readings = [f'{sql} as "{alias}"' for t in typed for alias, sql in t.readings]
    reasons = ", ".join(t.reason for t in typed if t.reason) or "null"
    return values, readings, reasons


def typed_sql(
    kind: str, col: str, label: str, fmt: FileFormat, plausible: Plausible | None = None
) -> TypedSql:
    """The SQL reading a text column `col` of kind `kind` under `fmt` (see TypedSql): the
    normalized text (NULL if blank or not parsable) and the reason it does not parse or,
    with `plausible`, falls outside its range."""
    if kind not in KINDS:
        raise ValueError(f"column {col!r}: unknown kind {kind!r} (known: {', '.join(KINDS)})")
    if kind == TEXT:
        return TypedSql(None, (), f'"{col}"', None)
    v = f'"{col}__v"'
    value = (f"{col}__v", _trimmed(col))
    shown = f"""'''' || "{col}" || ''''"""
    if kind == NUMBER:
        what = (
            "is not a number" if fmt == CANONICAL else f"is not an amount ({fmt.describe_number()})"
        )
        out_of_range = ""
        if plausible is not None:
            limit = f"(less than {plausible.max_amount:,.0f} either way)"
            # Exact, in the warehouse's type; digits past it do not cast at all (NULL).
            within = f'abs(try_cast("{col}__n" as decimal(38, 6))) < {plausible.max_amount:f}'
            out_of_range = (
                f"when not coalesce({within}, false) then "
                f"{_sql_text(f'{label} is beyond the plausible amount {limit}: ')} || {shown} "
            )
        return TypedSql(
            value,
            ((f"{col}__n", _number_sql(v, fmt)),),
            f'"{col}__n"',
            f'case when {v} is not null and "{col}__n" is null '
            f"then {_sql_text(label + ' ' + what + ': ')} || {shown} {out_of_range}end",
        )
    formats = (*fmt.timestamp_formats, *fmt.date_formats) if kind == TIMESTAMP else fmt.date_formats
    expected = f"a {kind} in format {' or '.join(formats)}" if formats else f"an ISO-8601 {kind}"
    cands = f'"{col}__c"'
    zoned = kind == TIMESTAMP and fmt.timezone != "UTC"
    under = " and ".join(formats) or "ISO-8601"
    under += f" in {fmt.timezone}" if zoned else ""
    if kind == TIMESTAMP and not formats and not zoned:
        # ISO-8601 in UTC (the canonical format): one reading, the text as written, so no
        # list of candidates (a third of the typing cost of such a column).
        iso = _iso(v, ISO_TIMESTAMP)
        readings = [
            (f"{col}__c", f"case when try_cast({iso} as timestamptz) is not null then {v} end")
        ]
        normalized, unread, ambiguous = cands, f"{cands} is null", ""
    else:
        readings = [(f"{col}__c", _candidates_sql(kind, v, fmt))]
        normalized = f"case when len({cands}) = 1 then {cands}[1] end"
        unread = f"len({cands}) = 0"
        ambiguous = (
            f"when len({cands}) > 1 then {_sql_text(label + ' is ambiguous: ')} || {shown}"
            f" || ' reads as ' || array_to_string(list_sort({cands}), ' or ') "
            f"|| {_sql_text(' under ' + under)} "
        )
    skipped = ""
    if zoned:
        readings.append((f"{col}__u", _candidates_sql(kind, v, fmt, zone_checked=False)))
        skipped = (
            f'when len({cands}) = 0 and len("{col}__u") > 0 then '
            f"{_sql_text(f'{label} is a local time that does not exist in {fmt.timezone}')}"
            f" || ' (clocks skipped it): ' || {shown} "
        )
    out_of_range = ""
    if plausible is not None:
        # Whole days, inclusive: a timestamp up to the midnight (UTC) after the latest day.
        first, last = plausible.earliest.isoformat(), plausible.latest.isoformat()
        if kind == DATE:
            reading = f"cast({normalized} as date)"
            outside = f"{reading} < date '{first}' or {reading} > date '{last}'"
        else:
            reading = f"cast({normalized} as timestamptz)"
            outside = (
                f"{reading} < timestamptz '{first}'"
                f" or {reading} >= timestamptz '{last}' + interval 1 day"
            )
        window = f" is outside the plausible dates ({plausible.describe_dates()}): "
        out_of_range = f"when {outside} then {_sql_text(label + window)} || {shown} "
    return TypedSql(
        value,
        tuple(readings),
        normalized,
        f"case when {v} is null then null {skipped}"
        f"when {unread} then {_sql_text(label + ' is not ' + expected + ': ')} || {shown} "
        f"{ambiguous}{out_of_range}end",
    )


def _number_sql(value: str, fmt: FileFormat) -> str:
    """SQL of an amount's plain decimal text, NULL if blank or not an amount under fmt."""
    if fmt == CANONICAL:
        # A plain decimal only: DuckDB's cast would also take 1e3 and 1_000.
        plain = r"[-+]?(\d+(\.\d*)?|\.\d+)"
        return f"case when regexp_full_match({value}, '{plain}') then {value} end"
    spaced = f"regexp_replace({value}, '[{_SPACES} ]+', ' ', 'g')"
    pattern = _sql_text(number_pattern(fmt))
    digits = f"regexp_extract({spaced}, {pattern}, 2)"
    if fmt.thousands_separator:
        digits = f"replace({digits}, {_sql_text(fmt.thousands_separator)}, '')"
    if fmt.decimal_separator != ".":
        digits = f"replace({digits}, {_sql_text(fmt.decimal_separator)}, '.')"
    sign = f"replace(regexp_extract({spaced}, {pattern}, 1), '+', '')"
    return f"case when regexp_full_match({spaced}, {pattern}) then {sign} || {digits} end"


def _candidates_sql(kind: str, value: str, fmt: FileFormat, *, zone_checked: bool = True) -> str:
    """SQL list of the distinct normalized readings of a value under the declared formats.

    A wall time the source's zone showed twice (fall back) has two readings, one its clocks
    skipped (spring forward) none; `zone_checked=False` reads either as DuckDB would.
    """
    readings: list[str] = []
    iso_date, iso = _iso(value, ISO_DATE), _iso(value, ISO_TIMESTAMP)
    if kind == DATE:
        if not fmt.date_formats:
            readings.append(f"strftime(try_cast({iso_date} as date), '%Y-%m-%d')")
        for f in fmt.date_formats:
            readings.append(f"strftime(try_strptime({value}, {_sql_text(f)}), '%Y-%m-%d')")
    else:  # TIMESTAMP: timestamp formats, then dates (midnight), in the source's zone
        if not fmt.timestamp_formats:
            # An offset follows a time; a date's own `-29` is no offset.
            zone = r"(Z|[+-]\d{2}(:?\d{2})?)"
            offset = f"regexp_matches({value}, ':\\d{{2}}(\\.\\d+)?\\s?{zone}$')"
            readings.append(
                f"case when {offset} then {_utc_text(f'try_cast({iso} as timestamptz)')} end"
            )
            naive = f"try_cast({iso} as timestamp)"
            readings += [
                f"case when not {offset} then {r} end"
                for r in _local_readings(naive, fmt, zone_checked)
            ]
        for f in fmt.timestamp_formats:
            parsed = f"try_strptime({value}, {_sql_text(f)})"
            if "%z" in f:
                readings.append(_utc_text(parsed))
            else:
                readings += _local_readings(parsed, fmt, zone_checked)
        for f in fmt.date_formats:
            parsed = f"cast(try_strptime({value}, {_sql_text(f)}) as timestamp)"
            readings += _local_readings(parsed, fmt, zone_checked)
    return f"list_distinct(list_filter([{', '.join(readings)}], lambda x: x is not null))"


def _iso(value: str, pattern: str) -> str:
    """SQL: the value when it is ISO-8601 as `pattern` spells it, else NULL."""
    return f"case when regexp_full_match({value}, '{pattern}') then {value} end"


def _local_readings(ts: str, fmt: FileFormat, zone_checked: bool = True) -> list[str]:
    """A naive timestamp read as wall time in the source's zone, as UTC texts: the instant
    DuckDB picks, kept only if the zone's clocks showed that wall time, and the other
    instant they showed it at, if any (the repeated hour when clocks go back)."""
    tz = _sql_text(fmt.timezone)
    aware = f"timezone({tz}, {ts})"
    if fmt.timezone == "UTC" or not zone_checked:
        return [_utc_text(aware)]
    hour = "interval 1 hour"
    exists = f"case when timezone({tz}, {aware}) = {ts} then {aware} end"
    other = (
        f"case when timezone({tz}, {aware} - {hour}) = {ts} then {aware} - {hour}"
        f" when timezone({tz}, {aware} + {hour}) = {ts} then {aware} + {hour} end"
    )
    return [_utc_text(exists), _utc_text(other)]


def _utc_text(tstz: str) -> str:
    return f"strftime(timezone('UTC', {tstz}), '%Y-%m-%dT%H:%M:%S.%fZ')"


# -- bytes ---------------------------------------------------------------------------


def as_utf8(path: Path, fmt: FileFormat) -> Path:
    """The file itself when it is UTF-8, else a UTF-8 copy in a temp file (caller deletes).

    Transcoded line by line: a line that does not decode under the declared encoding is
    copied as its bytes, so it stays invalid UTF-8 and is quarantined by the loader with
    its line number; the other lines load.
    """
    if fmt.is_utf8:
        return path
    handle = tempfile.NamedTemporaryFile("wb", suffix=".csv", prefix="transcoded-", delete=False)
    with path.open("rb") as src, handle as dst:
        for line in src:
            try:
                dst.write(line.decode(fmt.encoding).encode("utf-8"))
            except UnicodeDecodeError:
                dst.write(line)
    return Path(handle.name)


def header_cells(first_line: bytes, fmt: FileFormat, path: Path) -> list[str]:
    """The header row's names under the format (BOM tolerated), trimmed."""

    encoding = "utf-8-sig" if fmt.is_utf8 else fmt.encoding
    if first_line.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise LoadError(
            f"{path}: the file is UTF-16 (a spreadsheet's 'Unicode text'), not "
            f"{fmt.encoding}: save it as CSV UTF-8"
        )
    try:
        text = first_line.decode(encoding)
    except UnicodeDecodeError as exc:
        raise LoadError(f"{path}: header is not valid {fmt.encoding} ({exc.reason})") from exc
    text = text.lstrip("\ufeff").rstrip("\r\n")
    header = next(csv.reader([text], delimiter=fmt.delimiter, quotechar=fmt.quote), None)
    if not header or header == [""]:
        raise LoadError(f"{path}: empty file, no header row")
    return [name.strip() for name in header]
