"""Cron schedules as CronJob validation parses them (github.com/robfig/cron/v3 ParseStandard).

Accepts five fields (minute hour day-of-month month day-of-week) with names for months and
weekdays, `*`, `?`, ranges, steps and lists, or a descriptor (`@hourly`, `@every 1h30m`), and
an optional `TZ=`/`CRON_TZ=` prefix. Returns robfig's error text, which kube-apiserver puts
verbatim in `spec.schedule: Invalid value: "...": <error>`.
"""

from __future__ import annotations

import re

__all__ = ["parse_error"]

_DESCRIPTORS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
_MONTHS = {m: i + 1 for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])}
_DOWS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
# (min, max, names) for minute, hour, dom, month, dow.
_BOUNDS = [(0, 59, {}), (0, 23, {}), (1, 31, {}), (1, 12, _MONTHS), (0, 6, _DOWS)]
_DURATION = re.compile(r"([0-9]*(\.[0-9]*)?(ns|us|µs|ms|s|m|h))+")


def _atoi(s: str) -> tuple[int | None, str | None]:
    if re.fullmatch(r"[+-]?[0-9]+", s):
        return int(s), None
    return None, f'failed to parse int from {s}: strconv.Atoi: parsing "{s}": invalid syntax'


def _number(expr: str, names: dict[str, int]) -> tuple[int | None, str | None]:
    if expr.lower() in names:
        return names[expr.lower()], None
    n, err = _atoi(expr)
    if err:
        return None, err
    if n is not None and n < 0:
        return None, f"negative number ({n}) not allowed: {expr}"
    return n, None


def _range(expr: str, lo: int, hi: int, names: dict[str, int]) -> str | None:
    range_and_step = expr.split("/")
    low_and_high = range_and_step[0].split("-")
    single = len(low_and_high) == 1
    if low_and_high[0] in ("*", "?"):
        start, end = lo, hi
    else:
        start, err = _number(low_and_high[0], names)
        if err:
            return err
        if len(low_and_high) == 1:
            end = start
        elif len(low_and_high) == 2:
            end, err = _number(low_and_high[1], names)
            if err:
                return err
        else:
            return f"too many hyphens: {expr}"
    if len(range_and_step) == 2:
        step, err = _number(range_and_step[1], {})
        if err:
            return err
        if single and low_and_high[0] not in ("*", "?"):
            end = hi
        if step == 0:
            return f"step of range should be a positive number: {expr}"
    elif len(range_and_step) > 2:
        return f"too many slashes: {expr}"
    assert start is not None and end is not None
    if start < lo:
        return f"beginning of range ({start}) below minimum ({lo}): {expr}"
    if end > hi:
        return f"end of range ({end}) above maximum ({hi}): {expr}"
    if start > end:
        return f"beginning of range ({start}) beyond end of range ({end}): {expr}"
    return None


def parse_error(spec: str) -> str | None:
    """None when `spec` parses, else robfig/cron's error message."""
    if not spec:
        return "empty spec string"
    if spec.startswith(("TZ=", "CRON_TZ=")):
        i = spec.find(" ")
        if i < 0:
            return "missing spec"
        spec = spec[i:].strip()
    if spec.startswith("@"):
        if spec.startswith("@every "):
            dur = spec[len("@every "):]
            if not _DURATION.fullmatch(dur):
                return f'failed to parse duration {spec}: time: invalid duration "{dur}"'
            return None
        return None if spec in _DESCRIPTORS else f"unrecognized descriptor: {spec}"
    fields = spec.split()
    if len(fields) != 5:
        return f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]"
    for field, (lo, hi, names) in zip(fields, _BOUNDS):
        for expr in field.split(","):
            err = _range(expr, lo, hi, names)
            if err:
                return err
    return None
