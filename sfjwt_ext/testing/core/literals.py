"""Dates as Salesforce writes them, and SOQL's relative date literals (``LAST_N_DAYS:7``)."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from typing import Optional, Tuple

from .soql import DateLiteral

__all__ = ["UTC", "format_datetime", "format_for_user", "parse_datetime", "parse_date", "date_range",
           "fiscal_year_start"]

UTC = timezone.utc



def format_datetime(dt: datetime) -> str:
    """Salesforce's JSON datetime: ``2024-01-31T10:00:00.000+0000`` (always UTC)."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}+0000"


def _clock(hour: int, minute: int) -> str:
    return f"{(hour % 12) or 12}:{minute:02d} {'AM' if hour < 12 else 'PM'}"


def format_for_user(value: object, ftype: str, scale: int = 0) -> object:
    """FORMAT(): ``value`` of a field of type ``ftype`` as the org's user sees it (locale en_US,
    currency USD, time zone GMT): ``$1,234.50``, ``1,200``, ``10%``, ``1/31/2024``,
    ``1/31/2024, 10:00 AM``, ``10:00 AM``. Other types and nulls come back as they are."""
    if value is None:
        return None
    if ftype == "currency" and isinstance(value, (int, float)):
        text = f"{abs(value):,.{scale}f}"
        return f"-${text}" if value < 0 else f"${text}"
    if ftype in ("double", "percent", "int") and isinstance(value, (int, float)):
        text = f"{value:,.{scale if ftype != 'int' else 0}f}"
        return text + "%" if ftype == "percent" else text
    if ftype == "date" and isinstance(value, str) and parse_date(value):
        d = date.fromisoformat(value)
        return f"{d.month}/{d.day}/{d.year}"
    if ftype == "datetime" and isinstance(value, str):
        dt = parse_datetime(value)
        if dt is not None:
            return f"{dt.month}/{dt.day}/{dt.year}, {_clock(dt.hour, dt.minute)}"
    if ftype == "time" and isinstance(value, str) and re.match(r"^\d{2}:\d{2}", value):
        return _clock(int(value[:2]), int(value[3:5]))
    return value


_DT_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?"
    r"\s*(Z|z|[+-]\d{2}:?\d{2})?)?$"
)


def parse_datetime(text: str) -> Optional[datetime]:
    m = _DT_RE.match(text.strip())
    if not m:
        return None
    y, mo, d, hh, mi, ss, frac, tz = m.groups()
    try:
        micro = int((frac or "0")[:6].ljust(6, "0"))
        dt = datetime(int(y), int(mo), int(d), int(hh or 0), int(mi or 0), int(ss or 0), micro, tzinfo=UTC)
    except ValueError:
        return None
    if tz and tz not in ("Z", "z"):
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        dt = dt - sign * offset
    return dt


def parse_date(text: str) -> Optional[str]:
    try:
        return date.fromisoformat(text.strip()[:10]).isoformat() if len(text.strip()) == 10 else None
    except ValueError:
        return None


def _add_months(d: date, months: int) -> date:
    total = d.year * 12 + (d.month - 1) + months
    y, m = divmod(total, 12)
    return date(y, m + 1, 1)


def fiscal_year_start(today: date, start_month: int = 1) -> date:
    """The first day of the fiscal year holding ``today`` (standard fiscal years begin on the 1st of
    ``start_month``; a new org's is January)."""
    year = today.year if today.month >= start_month else today.year - 1
    return date(year, start_month, 1)


def _fiscal_range(name: str, n: int, today: date, start_month: int) -> Tuple[date, date]:
    fy = fiscal_year_start(today, start_month)
    months_in = (today.year - fy.year) * 12 + today.month - fy.month
    fq = _add_months(fy, 3 * (months_in // 3))
    if "QUARTER" in name:
        start, months = fq, 3
    else:
        start, months = fy, 12
    if name.startswith("THIS_"):
        k, count = 0, 1
    elif name.startswith("LAST_N_"):
        k, count = -n, n
    elif name.startswith("NEXT_N_"):
        k, count = 1, n
    elif name.startswith("LAST_"):
        k, count = -1, 1
    elif name.startswith("NEXT_"):
        k, count = 1, 1
    else:  # N_FISCAL_..._AGO
        k, count = -n, 1
    first = _add_months(start, k * months)
    return first, _add_months(first, count * months)


def date_range(lit: DateLiteral, today: date, fiscal_start_month: int = 1) -> Tuple[date, date]:
    """[start, end) of a relative date literal (weeks start on Sunday, calendar quarters; fiscal
    literals use standard fiscal years starting on the 1st of ``fiscal_start_month``)."""
    name, n = lit.name, lit.n or 0
    if "FISCAL" in name:
        return _fiscal_range(name, n, today, fiscal_start_month)
    day = timedelta(days=1)
    week_start = today - timedelta(days=(today.weekday() + 1) % 7)
    month_start = today.replace(day=1)
    quarter_start = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    year_start = date(today.year, 1, 1)
    fixed = {
        "YESTERDAY": (today - day, today),
        "TODAY": (today, today + day),
        "TOMORROW": (today + day, today + 2 * day),
        "LAST_WEEK": (week_start - 7 * day, week_start),
        "THIS_WEEK": (week_start, week_start + 7 * day),
        "NEXT_WEEK": (week_start + 7 * day, week_start + 14 * day),
        "LAST_MONTH": (_add_months(month_start, -1), month_start),
        "THIS_MONTH": (month_start, _add_months(month_start, 1)),
        "NEXT_MONTH": (_add_months(month_start, 1), _add_months(month_start, 2)),
        "LAST_90_DAYS": (today - 90 * day, today + day),
        "NEXT_90_DAYS": (today + day, today + 91 * day),
        "LAST_QUARTER": (_add_months(quarter_start, -3), quarter_start),
        "THIS_QUARTER": (quarter_start, _add_months(quarter_start, 3)),
        "NEXT_QUARTER": (_add_months(quarter_start, 3), _add_months(quarter_start, 6)),
        "LAST_YEAR": (date(today.year - 1, 1, 1), year_start),
        "THIS_YEAR": (year_start, date(today.year + 1, 1, 1)),
        "NEXT_YEAR": (date(today.year + 1, 1, 1), date(today.year + 2, 1, 1)),
    }
    if name in fixed:
        return fixed[name]
    unit_start = {"DAYS": today, "WEEKS": week_start, "MONTHS": month_start, "QUARTERS": quarter_start,
                  "YEARS": year_start}
    unit = name.rsplit("_", 1)[1] if not name.endswith("_AGO") else name.split("_")[1]

    def shift(d: date, k: int) -> date:
        if unit == "DAYS":
            return d + k * day
        if unit == "WEEKS":
            return d + 7 * k * day
        if unit == "MONTHS":
            return _add_months(d, k)
        if unit == "QUARTERS":
            return _add_months(d, 3 * k)
        return date(d.year + k, 1, 1)

    start = unit_start[unit]
    if name.startswith("LAST_N_"):
        # days: the last n days including today; other units: the n units before the current one
        if unit == "DAYS":
            return today - n * day, today + day
        return shift(start, -n), start
    if name.startswith("NEXT_N_"):
        if unit == "DAYS":
            return today + day, today + (n + 1) * day
        return shift(start, 1), shift(start, n + 1)
    # N_<unit>_AGO
    return shift(start, -n), shift(start, -n + 1)

