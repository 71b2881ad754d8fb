"""Round tallies, rates and the ETA, with a fake clock (times are passed in)."""

from __future__ import annotations

import pytest

from syncapp.engine.progress import RateMeter, RoundTally, Totals


def test_tally_counts_a_path_planned_twice_once_and_reaches_the_total() -> None:
    t = RoundTally()
    t.planned("a", 100)
    t.planned("b", 50)
    t.planned("a", 120)  # changed again before it went
    assert t.totals() == Totals(0, 2, 0, 170)
    t.started("a", 120)
    t.sent("a", 60)
    assert t.totals() == Totals(0, 2, 60, 170)
    t.finished("a")
    assert t.totals() == Totals(1, 2, 120, 170)
    t.dropped("b")  # vanished before its upload: out of the round
    assert t.totals() == Totals(1, 1, 120, 120)
    assert t.totals().share == 1.0


def test_tally_counts_unplanned_uploads_and_resets() -> None:
    t = RoundTally()
    t.started("retry", 10)
    t.finished("retry")
    assert t.totals() == Totals(1, 1, 10, 10)
    t.finished("never-started")  # harmless
    t.reset()
    assert t.totals() == Totals()


def test_share_weights_files_and_bytes() -> None:
    assert Totals(1, 2, 0, 100).share == pytest.approx(0.25)
    assert Totals(0, 0, 0, 0).share == 0.0
    assert Totals(3, 4, 0, 0).share == pytest.approx(0.75)


def feed_steady(meter: RateMeter, start: float, seconds: int, files_per_s: int, size: int) -> None:
    for s in range(seconds + 1):
        n = s * files_per_s
        meter.sample(start + s, n, n * size)


def test_rates_need_a_warmup_then_follow_the_window() -> None:
    m = RateMeter(window=10, warmup=2)
    m.sample(100.0, 0, 0)
    assert m.rates(101.0) is None
    feed_steady(m, 100.0, 30, files_per_s=50, size=1000)
    r = m.rates(130.0)
    assert r is not None
    assert r.files == pytest.approx(50, rel=0.01)
    assert r.bytes == pytest.approx(50_000, rel=0.01)


def test_eta_for_many_small_files_is_paced_by_files_per_second() -> None:
    m = RateMeter(window=10, warmup=2)
    feed_steady(m, 0.0, 10, files_per_s=100, size=10)  # 1 KB/s of bytes, 100 files/s
    done = Totals(1000, 5000, 10_000, 50_000)
    assert m.eta(done, 10.0) == pytest.approx(40, rel=0.02)


def test_eta_for_one_big_file_is_paced_by_bytes() -> None:
    m = RateMeter(window=10, warmup=2)
    for s in range(11):
        m.sample(float(s), 0, s * 1_000_000)
    assert m.eta(Totals(0, 1, 10_000_000, 100_000_000), 10.0) == pytest.approx(90, rel=0.02)


def test_eta_smooths_a_burst_and_reacts_to_a_stall() -> None:
    m = RateMeter(window=20, warmup=2)
    feed_steady(m, 0.0, 20, files_per_s=10, size=1)
    m.sample(20.5, 260, 260)  # a burst of 60 files in half a second
    eta = m.eta(Totals(260, 1000, 260, 1000), 20.5)
    assert eta is not None and 45 < eta < 70  # not 740 / 120 files/s
    # Nothing more arrives for a long while: the rate falls, the ETA grows, then is unknown.
    later = m.eta(Totals(260, 1000, 260, 1000), 35.0)
    assert later is not None and later > eta
    assert m.eta(Totals(260, 1000, 260, 1000), 80.0) is None


def test_a_new_round_starts_the_meter_afresh() -> None:
    m = RateMeter(window=10, warmup=2)
    feed_steady(m, 0.0, 10, files_per_s=100, size=10)
    m.sample(11.0, 0, 0)
    assert m.rates(12.0) is None
    assert m.eta(Totals(5, 5, 50, 50), 12.0) == 0.0
    assert m.eta(Totals(), 12.0) is None


def test_no_eta_before_a_share_of_the_work_is_done() -> None:
    m = RateMeter(window=10, warmup=2, min_share=0.05)
    feed_steady(m, 0.0, 5, files_per_s=10, size=1)
    assert m.eta(Totals(50, 5000, 50, 5000), 5.0) is None  # 1 % done: too early to say
    assert m.eta(Totals(300, 5000, 300, 5000), 5.0) is not None


def test_samples_nobody_reads_do_not_pile_up() -> None:
    """The engine samples every progress event of a long round; rates may never be asked."""
    meter = RateMeter(window=20.0)
    for i in range(36_000):  # an hour at ten samples a second
        meter.sample(i / 10, i, i * 1000)
    assert len(meter._samples) <= 20 * 10 + 2
    rates = meter.rates(3600.0)
    assert rates is not None and abs(rates.files - 10.0) < 0.1
