import time

from switchboard.pipeline.clock import AudioClock


def test_captured_at_finds_the_frame():
    clock = AudioClock()
    for i in range(10):
        clock.record(i * 0.02, 100.0 + i)
    assert clock.captured_at(0.05) == 102.0
    assert clock.captured_at(-1.0) == 100.0
    assert clock.captured_at(99.0) == 109.0


def test_latency_is_measured_from_capture():
    clock = AudioClock()
    clock.record(0.0, time.monotonic() - 0.25)
    assert 249 < clock.latency_ms(0.0) < 1000
