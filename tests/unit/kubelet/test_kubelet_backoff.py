"""Container restart back-off: 10 s doubling to 5 min, reset after 10 min (issue 7)."""

from __future__ import annotations

import pytest

from navio.kubelet.backoff import Backoff, go_duration


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_first_restart_is_immediate_then_the_delay_doubles_up_to_five_minutes():
    clock = Clock()
    b = Backoff(clock=clock)
    delays = []
    for _ in range(8):
        finished = clock.now
        if b.in_backoff_since("k", finished):
            clock.now += b.remaining("k", finished)
            assert not b.in_backoff_since("k", finished)
        b.next("k", finished)
        delays.append(b.get("k"))
        clock.now += 1      # the container runs one second and crashes
    assert delays == [10, 20, 40, 80, 160, 300, 300, 300]


def test_a_container_that_crashes_again_is_in_back_off_until_the_delay_passed():
    clock = Clock()
    b = Backoff(clock=clock)
    b.next("k", clock.now)
    clock.now += 3
    finished = clock.now
    assert b.in_backoff_since("k", finished)
    clock.now += 9.9
    assert b.in_backoff_since("k", finished)
    clock.now += 0.2
    assert not b.in_backoff_since("k", finished)


def test_running_for_longer_than_ten_minutes_resets_the_back_off():
    clock = Clock()
    b = Backoff(clock=clock)
    for _ in range(5):
        b.next("k", clock.now)
    assert b.get("k") == 160
    clock.now += 601
    assert not b.in_backoff_since("k", clock.now)
    b.next("k", clock.now)
    assert b.get("k") == 10


def test_forget_drops_every_key_of_a_pod():
    b = Backoff(clock=Clock())
    b.next("uid1/a", 0)
    b.next("uid1/b", 0)
    b.next("uid2/a", 0)
    b.forget("uid1/")
    assert (b.get("uid1/a"), b.get("uid1/b"), b.get("uid2/a")) == (0, 0, 10)


@pytest.mark.parametrize("seconds, text", [
    (10, "10s"), (20, "20s"), (80, "1m20s"), (160, "2m40s"), (300, "5m0s"), (1.5, "1.5s"),
    (0.25, "250ms"), (3600, "1h0m0s"), (0, "0s"),
], ids=lambda v: str(v))
def test_durations_print_as_go_does(seconds, text):
    assert go_duration(seconds) == text
