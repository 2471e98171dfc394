"""The widget's per-member windows count as limits' fixed window does, in memory or not."""

import time

import pytest
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter

from loyalty.widget.ratelimit import ProcessWindows, StorageWindows


@pytest.mark.parametrize("counters", ["process", "storage"])
def test_windows_allow_the_amount_then_refuse_until_the_window_ends(counters, monkeypatch):
    clock = [1_000_000.0]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    windows = (
        ProcessWindows()
        if counters == "process"
        else StorageWindows(FixedWindowRateLimiter(MemoryStorage()))
    )
    three = parse("3/minute")
    seen = [windows.hit(three, "scope", "ana") for _ in range(4)]
    assert [(allowed, remaining) for allowed, remaining, _reset in seen] == [
        (True, 2),
        (True, 1),
        (True, 0),
        (False, 0),
    ]
    assert {reset for _allowed, _remaining, reset in seen} == {clock[0] + 60}
    # Another key, or another scope, has its own window.
    assert windows.hit(three, "scope", "ben")[:2] == (True, 2)
    assert windows.hit(three, "other", "ana")[:2] == (True, 2)
    # A new window opens once the old one has ended.
    clock[0] += 61
    assert windows.hit(three, "scope", "ana") == (True, 2, clock[0] + 60)
