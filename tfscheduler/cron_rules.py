"""Cron scaling rules (seed 004 "cronScalingRules"): which rule, if any, is active at a given moment. Pure; the
clock is a parameter so tests (and the scheduler's loop) pass their own ``now``.

A rule with ``enable: true`` is active from a firing of its ``start`` expression until the next firing of its
``end`` expression after that start (standard 5-field cron, parsed by croniter, evaluated in UTC). When several
enabled rules are active at once, the first in the workload's list wins (at most one rule is active, as the seed
says); outside every window the workload's own resources apply again.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from croniter import croniter
from croniter.croniter import CroniterError


@dataclass(frozen=True)
class CronRule:
    """One cronScalingRules entry. ``desired`` holds the rule's desiredResources as
    {"requests": {"tflops": float, "vram_mib": float}, "limits": {...}} (the parsed form of workload_config)."""
    name: str
    start: str
    end: str
    enable: bool = True
    desired: dict | None = None


def validate_cron(expr: str, field: str) -> None:
    """Raises ValueError naming ``field`` when ``expr`` is not a standard 5-field cron expression."""
    if not isinstance(expr, str) or len(expr.split()) != 5:
        raise ValueError(f"{field}: {expr!r} is not a 5-field cron expression (minute hour day month weekday)")
    try:
        croniter(expr)
    except (CroniterError, ValueError, KeyError) as e:
        raise ValueError(f"{field}: {expr!r} is not a valid cron expression ({e})") from None


def window(rule: CronRule, now: datetime) -> tuple[datetime, datetime] | None:
    """The [start, end) window of ``rule`` that contains ``now``, or None. ``now`` must be timezone-aware."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    # fires fall on whole minutes: the latest start at or before now is croniter's (strict) previous firing
    # before the next whole minute
    base = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    start = croniter(rule.start, base).get_prev(datetime)
    end = croniter(rule.end, start).get_next(datetime)
    return (start, end) if start <= now < end else None


def active_rule(rules: list[CronRule], now: datetime) -> CronRule | None:
    """The first enabled rule whose window contains ``now``; None when none is active."""
    for rule in rules:
        if rule.enable and window(rule, now) is not None:
            return rule
    return None
