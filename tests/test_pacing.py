"""The pacer of bulk Daraja work slows down on spike arrest and comes back to its rate."""

from attendance.services.core.pacing import Pacer


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_a_spike_arrest_slows_the_pacer_and_a_quiet_spell_brings_it_back_step_by_step():
    clock = Clock()
    pacer = Pacer(10, clock=clock)  # 10 a second: 0.1 s apart
    pacer.slow_down()
    pacer.slow_down()
    assert pacer.interval == 0.4  # a quarter of the rate after two arrests
    clock.now += 5
    pacer.wait()
    assert pacer.interval == 0.4  # not yet: arrests this recent may come again
    clock.now += 6  # 11 s after the last arrest
    pacer.wait()
    assert pacer.interval == 0.2
    clock.now += 3
    pacer.wait()
    assert pacer.interval == 0.2  # one step per quiet spell, not all at once
    clock.now += 10
    pacer.wait()
    assert pacer.interval == 0.1
    clock.now += 60
    pacer.wait()
    assert pacer.interval == 0.1  # never faster than the rate it was given


def test_the_pacer_never_waits_longer_than_its_slowest():
    pacer = Pacer(10, clock=Clock())
    for _ in range(20):
        pacer.slow_down()
    assert pacer.interval == Pacer.SLOWEST


def test_starts_are_spaced_by_the_interval():
    clock = Clock()
    pacer = Pacer(2, clock=clock)
    pacer.wait()
    assert pacer.next_at == clock.now + 0.5
