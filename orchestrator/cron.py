"""Count the ticks of a cron string: the most in a month, the most in a sliding window (pure)."""

from __future__ import annotations

import calendar
import datetime
from functools import lru_cache

_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
)
_MONTH_NAMES = {name.lower(): n for n, name in enumerate(calendar.month_abbr) if name}
_DAY_NAMES = {name.lower(): (n + 1) % 7 for n, name in enumerate(calendar.day_abbr)}


class CronError(ValueError):
    """A cron string this module cannot read; the message names the field."""


def _value(text: str, what: str, names: dict[str, int]) -> int:
    if text.lower() in names:
        return names[text.lower()]
    if not text.isdigit():
        msg = f"cron {what} field: {text!r} is not a number"
        raise CronError(msg)
    return int(text)


def _field(text: str, what: str, low: int, high: int) -> frozenset[int]:
    names = _MONTH_NAMES if what == "month" else _DAY_NAMES if what == "day of week" else {}
    values: set[int] = set()
    for part in text.split(","):
        spec, _, step_text = part.partition("/")
        step = _value(step_text, what, {}) if step_text else 1
        if spec == "*":
            start, stop = low, high
        elif "-" in spec:
            first, _, last = spec.partition("-")
            start, stop = _value(first, what, names), _value(last, what, names)
        else:
            start = _value(spec, what, names)
            stop = high if step_text else start
        if not (low <= start <= stop <= high) or step < 1:
            msg = f"cron {what} field: {part!r} is outside {low}-{high}"
            raise CronError(msg)
        values.update(range(start, stop + 1, step))
    if what == "day of week" and 7 in values:
        values = (values - {7}) | {0}  # both 0 and 7 are Sunday
    return frozenset(values)


@lru_cache(maxsize=64)
def _parse(cron: str) -> tuple[frozenset[int], ...]:
    parts = cron.split()
    if len(parts) != 5:
        msg = f"cron {cron!r} needs five fields (minute hour day-of-month month day-of-week)"
        raise CronError(msg)
    return tuple(_field(p, w, lo, hi) for p, (w, lo, hi) in zip(parts, _FIELDS, strict=True))


def _day_matches(cron: str, day: datetime.date) -> bool:
    _, _, days, months, weekdays = _parse(cron)
    if day.month not in months:
        return False
    dom_any, dow_any = cron.split()[2] == "*", cron.split()[4] == "*"
    in_dom = day.day in days
    in_dow = (day.isoweekday() % 7) in weekdays
    if dom_any or dow_any:  # classic cron: both restricted means either one
        return in_dom and in_dow
    return in_dom or in_dow


def ticks_per_day(cron: str) -> int:
    """Ticks on a day the cron runs at all."""
    minutes, hours, *_ = _parse(cron)
    return len(minutes) * len(hours)


def max_ticks_per_month(cron: str) -> int:
    """The most ticks any calendar month can hold (checked over 28 years of months)."""
    per_day = ticks_per_day(cron)
    most = 0
    for year in range(2024, 2052):  # every weekday/leap-year alignment of every month
        for month in range(1, 13):
            days = calendar.monthrange(year, month)[1]
            count = sum(
                _day_matches(cron, datetime.date(year, month, d)) for d in range(1, days + 1)
            )
            most = max(most, count * per_day)
    return most


def max_ticks_in_window(cron: str, window_minutes: int) -> int:
    """The most ticks in any ``window_minutes``-long sliding window.

    Windows within one day and across midnight count, as if the cron ran every day.
    """
    minutes, hours, *_ = _parse(cron)
    day = sorted(h * 60 + m for h in hours for m in minutes)
    # Two consecutive running days cover every window that crosses midnight.
    times = day + [t + 1440 for t in day]
    most, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window_minutes:
            start += 1
        most = max(most, end - start + 1)
    return most
