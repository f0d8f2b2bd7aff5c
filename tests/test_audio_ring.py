import numpy as np
from switchboard.pipeline.audio_ring import AudioRing


def test_slice_by_time_and_wraparound():
    ring = AudioRing(seconds=1.0, rate=100)
    for i in range(30):  # 3 s of 0.1 s chunks into a 1 s ring
        ring.append(i * 0.1, np.full(10, i, np.float32))
    assert ring.t_end == 3.0
    got = ring.slice(2.5, 2.7)
    assert np.array_equal(got, np.repeat(np.array([25, 26], np.float32), 10))
    assert len(ring.slice(0.0, 3.0)) == 100  # only the last second is held


def test_gap_is_filled_with_silence_and_overlap_ignored():
    ring = AudioRing(seconds=1.0, rate=100)
    ring.append(0.0, np.ones(10, np.float32))
    ring.append(0.2, np.ones(10, np.float32))  # 0.1 s lost
    assert np.array_equal(ring.slice(0.1, 0.2), np.zeros(10, np.float32))
    ring.append(0.25, np.full(10, 7, np.float32))  # overlaps 0.25-0.3
    assert ring.t_end == 0.35
    assert ring.slice(0.3, 0.35).tolist() == [7.0] * 5
