import asyncio
import time

import numpy as np
from switchboard.telephony.audio_file import Recording
from switchboard.telephony.file_source import frames


def _collect(rec, realtime):
    async def run():
        return [f async for f in frames(rec, realtime=realtime, tail_silence_s=0.1)]

    return asyncio.run(run())


def test_20ms_frames_with_audio_positions():
    rec = Recording("x", np.zeros(16000 + 100, np.float32), 16000, 1, "test")
    out = _collect(rec, realtime=False)
    assert len(out) == 56  # 16000 + 100 + 1600 samples, padded to whole 320-sample frames
    assert all(len(f.pcm) == 640 for f in out)
    assert [f.seq for f in out] == list(range(56))
    assert out[10].t_audio == 0.2


def test_realtime_pacing():
    rec = Recording("x", np.zeros(8000, np.float32), 16000, 1, "test")
    start = time.monotonic()
    out = _collect(rec, realtime=True)
    elapsed = time.monotonic() - start
    assert elapsed >= 0.55  # 0.6 s of audio is released no faster than real time
    assert out[-1].captured - out[0].captured >= 0.5
