"""Cron scaling rules (tfscheduler/cron_rules.py): windows from start/end expressions, one active rule at a time,
with the clock passed in."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from tfscheduler.cron_rules import CronRule, active_rule, validate_cron, window

UTC = timezone.utc
# the seed's example: all of Thursday
THURSDAY = CronRule(name="test", start="0 0 * * Thu", end="59 23 * * Thu")


def at(*a):
    return datetime(*a, tzinfo=UTC)


def test_the_seeds_thursday_rule_is_active_on_thursday_only():
    # 2026-12-03 is a Thursday
    assert window(THURSDAY, at(2026, 12, 3, 0, 0)) == (at(2026, 12, 3, 0, 0), at(2026, 12, 3, 23, 59))
    assert window(THURSDAY, at(2026, 12, 3, 12, 30, 15)) is not None
    assert window(THURSDAY, at(2026, 12, 3, 23, 59)) is None  # the end is exclusive
    assert window(THURSDAY, at(2026, 12, 2, 23, 59, 59)) is None
    assert window(THURSDAY, at(2026, 12, 4, 8, 0)) is None


def test_a_window_may_cross_midnight():
    night = CronRule(name="night", start="0 22 * * *", end="0 6 * * *")
    assert window(night, at(2026, 12, 1, 23, 0)) == (at(2026, 12, 1, 22, 0), at(2026, 12, 2, 6, 0))
    assert window(night, at(2026, 12, 2, 5, 59)) is not None
    assert window(night, at(2026, 12, 2, 6, 0)) is None
    assert window(night, at(2026, 12, 2, 12, 0)) is None


def test_first_enabled_active_rule_wins_and_disabled_rules_never_apply():
    a = CronRule(name="a", start="0 9 * * *", end="0 17 * * *", enable=False)
    b = CronRule(name="b", start="0 8 * * *", end="0 18 * * *")
    c = CronRule(name="c", start="0 10 * * *", end="0 11 * * *")
    assert active_rule([a, b, c], at(2026, 12, 1, 10, 30)).name == "b"
    assert active_rule([a, c, b], at(2026, 12, 1, 10, 30)).name == "c"
    assert active_rule([a, b, c], at(2026, 12, 1, 19, 0)) is None


def test_bad_expressions_are_refused_naming_the_field():
    with pytest.raises(ValueError, match="cronScalingRules\\[0\\].start"):
        validate_cron("0 0 * *", "cronScalingRules[0].start")
    with pytest.raises(ValueError, match="end"):
        validate_cron("61 0 * * *", "end")
    validate_cron("*/5 * * * Mon-Fri", "start")
    with pytest.raises(ValueError, match="timezone"):
        window(THURSDAY, datetime(2026, 12, 3))
