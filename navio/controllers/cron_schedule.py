"""Cron schedules as the CronJob controller runs them (github.com/robfig/cron/v3
ParseStandard and SpecSchedule.Next).

Why: `navio/api/validation/cron.py` only says whether a schedule parses (with robfig's error
text, which this module reuses); the controller needs the next activation time.

Guarantees:
- Five fields (minute hour day-of-month month day-of-week), names for months and weekdays,
  `*`, `?`, ranges, steps, lists; descriptors `@yearly`/`@annually`, `@monthly`, `@weekly`,
  `@daily`/`@midnight`, `@hourly`, `@every <duration>`; a `TZ=`/`CRON_TZ=` prefix.
- Day matching as robfig: when day-of-month or day-of-week is a bare `*`/`?`, both must
  match; otherwise either may.
- `next(t)` is the first activation strictly after `t` (whole seconds, second 0), computed
  in the schedule's time zone and returned as an aware UTC datetime; None when none exists
  within five years (e.g. `0 0 30 2 *`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from navio.api.validation.cron import parse_error

__all__ = ["Schedule", "parse_schedule", "ScheduleError", "load_location"]

_DESCRIPTORS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
                "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
                "@hourly": "0 * * * *"}
_MONTHS = {m: i + 1 for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])}
_DOWS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
_BOUNDS = [(0, 59, {}), (0, 23, {}), (1, 31, {}), (1, 12, _MONTHS), (0, 6, _DOWS)]
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class ScheduleError(ValueError):
    """The schedule does not parse; the message is robfig's."""


def load_location(name: str | None) -> tzinfo:
    """time.LoadLocation: "" and "UTC" are UTC, "Local" the host zone, else IANA names."""
    if not name or name == "UTC":
        return timezone.utc
    if name == "Local":
        return datetime.now().astimezone().tzinfo or timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError(f"unknown time zone {name}") from exc


@dataclass(frozen=True)
class Schedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    dom: frozenset[int]
    months: frozenset[int]
    dow: frozenset[int]
    dom_star: bool
    dow_star: bool
    location: tzinfo
    every: float = 0.0                    # @every: a constant delay, in whole seconds

    def _day_matches(self, t: datetime) -> bool:
        dom_ok = t.day in self.dom
        dow_ok = (t.weekday() + 1) % 7 in self.dow
        if self.dom_star or self.dow_star:
            return dom_ok and dow_ok
        return dom_ok or dow_ok

    def next(self, after: datetime) -> datetime | None:
        if after.tzinfo is None:
            after = after.replace(tzinfo=timezone.utc)
        if self.every:
            base = after.replace(microsecond=0)
            return (base + timedelta(seconds=self.every)).astimezone(timezone.utc)
        t = after.astimezone(self.location).replace(second=0, microsecond=0, tzinfo=None)
        t += timedelta(minutes=1)
        limit = t.year + 5
        while t.year <= limit:
            if t.month not in self.months:
                t = (t.replace(day=1, hour=0, minute=0) + timedelta(days=32)).replace(day=1)
                continue
            if not self._day_matches(t):
                t = t.replace(hour=0, minute=0) + timedelta(days=1)
                continue
            if t.hour not in self.hours:
                t = t.replace(minute=0) + timedelta(hours=1)
                continue
            if t.minute not in self.minutes:
                t += timedelta(minutes=1)
                continue
            return t.replace(tzinfo=self.location).astimezone(timezone.utc)
        return None


def _field(expr: str, lo: int, hi: int, names: dict[str, int]) -> tuple[set[int], bool]:
    values: set[int] = set()
    star = False
    for part in expr.split(","):
        rng, _, step_s = part.partition("/")
        low_high = rng.split("-")
        if low_high[0] in ("*", "?"):
            start, end, star_part = lo, hi, True
        else:
            start = names.get(low_high[0].lower(), -1)
            start = int(low_high[0]) if start < 0 else start
            end = start
            if len(low_high) == 2:
                end = names.get(low_high[1].lower(), -1)
                end = int(low_high[1]) if end < 0 else end
            star_part = False
        step = int(step_s) if step_s else 1
        if step_s and len(low_high) == 1 and not star_part:
            end = hi                      # "N/step" means "N-max/step"
        if step > 1:
            star_part = False
        star = star or star_part
        values.update(range(start, end + 1, step))
    return values, star


def _duration(text: str) -> float:
    parts = re.findall(r"([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)", text)
    return sum(float(n) * _UNITS[u] for n, u in parts)


def parse_schedule(spec: str) -> Schedule:
    """cron.ParseStandard; raises ScheduleError with robfig's message."""
    err = parse_error(spec)
    if err:
        raise ScheduleError(err)
    location: tzinfo = timezone.utc
    if spec.startswith(("TZ=", "CRON_TZ=")):
        prefix, _, spec = spec.partition(" ")
        location = load_location(prefix.split("=", 1)[1])
        spec = spec.strip()
    if spec.startswith("@every "):
        seconds = max(int(_duration(spec[len("@every "):])), 1)
        empty: frozenset[int] = frozenset()
        return Schedule(empty, empty, empty, empty, empty, False, False, location,
                        every=float(seconds))
    fields = _DESCRIPTORS.get(spec, spec).split()
    parsed = [_field(f, lo, hi, names) for f, (lo, hi, names) in zip(fields, _BOUNDS)]
    (minutes, _), (hours, _), (dom, dom_star), (months, _), (dow, dow_star) = parsed
    return Schedule(frozenset(minutes), frozenset(hours), frozenset(dom), frozenset(months),
                    frozenset(d % 7 for d in dow), dom_star, dow_star, location)
