"""This computer's microphone and speakers as a call party (``switchboard talk``), on PyAudio.

PortAudio's blocking streams are read and written by two threads, each paced on its own
20 ms clock as well as by the device: a real device blocks until 20 ms have been captured
or played, while a virtual one (ALSA's ``file`` plugin over ``null``, as the tests use)
returns at once and would otherwise run the call faster than real time. A device that
cannot open 16 kHz is opened at its own rate and resampled at the edge (soxr, streaming).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as np
from switchboard.telephony.edge import FRAME_BYTES, SILENCE
from switchboard.telephony.paced import PacedFrames

if TYPE_CHECKING:
    import pyaudio

log = logging.getLogger(__name__)

RATE = 16000
FRAME_S = 0.02
#: Longest session a device thread serves (its loop's bound): 8 hours of frames.
MAX_FRAMES = 8 * 3600 * 50


class NoSoundDevice(RuntimeError):
    """No usable microphone or speakers (or PyAudio itself is missing)."""


def find_devices(name: str | None = None) -> tuple[pyaudio.PyAudio, int, int]:
    """(PyAudio instance, input device index, output device index).

    ``name`` picks the first device whose name contains it; otherwise the system's
    defaults. Raises :class:`NoSoundDevice` with a one-line reason.
    """
    try:
        import pyaudio
    except ImportError:
        raise NoSoundDevice("PyAudio is not installed (Debian: apt install "
                            "portaudio19-dev, then pip install pyaudio)") from None
    with _quiet_stderr():  # ALSA and JACK print pages of probing noise on fd 2
        pa = pyaudio.PyAudio()
    devices = [pa.get_device_info_by_index(i) for i in range(pa.get_device_count())]
    if name is not None:
        chosen = [d for d in devices if name in d["name"]]
        inputs = [d for d in chosen if d["maxInputChannels"] > 0]
        outputs = [d for d in chosen if d["maxOutputChannels"] > 0]
    else:
        inputs = _default(pa.get_default_input_device_info, devices, "maxInputChannels")
        outputs = _default(pa.get_default_output_device_info, devices, "maxOutputChannels")
    if not inputs or not outputs:
        with _quiet_stderr():
            pa.terminate()
        missing = "microphone" if not inputs else "speakers"
        where = f" named like {name!r}" if name else ""
        raise NoSoundDevice(f"no {missing}{where} found: this computer has no sound device "
                            "PortAudio can open")
    return pa, int(inputs[0]["index"]), int(outputs[0]["index"])


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 (C libraries' own prints) for the block."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _default(get: Callable[[], dict], devices: list[dict], key: str) -> list[dict]:
    try:
        return [get()]
    except OSError:  # no default device: any that can do it
        return [d for d in devices if d[key] > 0]


class SoundDeviceEdge:
    """The desk's microphone and speakers, as the call's caller."""

    def __init__(self, pa: pyaudio.PyAudio, input_index: int, output_index: int) -> None:
        self.pa = pa
        self.peer = f"desk:{pa.get_device_info_by_index(input_index)['name']}"
        self.on_dtmf: Callable[[str], None] | None = None
        self.on_hold: Callable[[bool], None] | None = None
        self.ended: str | None = None
        self._input_index = input_index
        self._output_index = output_index
        self._in = PacedFrames(25)
        self._out: deque[bytes] = deque(maxlen=5)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """Open both streams and start their threads (from the event loop)."""
        self._loop = asyncio.get_running_loop()
        mic, mic_rate = self._open(self._input_index, input=True)
        speaker, speaker_rate = self._open(self._output_index, input=False)
        self._threads = [
            threading.Thread(target=self._capture, args=(mic, mic_rate), daemon=True,
                             name="desk:mic"),
            threading.Thread(target=self._play, args=(speaker, speaker_rate), daemon=True,
                             name="desk:speakers"),
        ]
        for thread in self._threads:
            thread.start()

    def _open(self, index: int, input: bool):
        import pyaudio

        rates = [RATE, int(self.pa.get_device_info_by_index(index)["defaultSampleRate"])]
        error: Exception | None = None
        for rate in dict.fromkeys(rates):
            try:
                with _quiet_stderr():
                    stream = self.pa.open(format=pyaudio.paInt16, channels=1, rate=rate,
                                          input=input, output=not input,
                                          frames_per_buffer=rate // 50,
                                          input_device_index=index if input else None,
                                          output_device_index=None if input else index)
                return stream, rate
            except (OSError, ValueError) as exc:
                error = exc
        raise NoSoundDevice(f"cannot open the {'microphone' if input else 'speakers'}: "
                            f"{error}")

    def _capture(self, stream, rate: int) -> None:
        resample = _Resampler(rate, RATE)
        pcm = bytearray()
        next_at = time.monotonic()
        try:
            for _ in range(MAX_FRAMES):
                if self._stop.is_set():
                    break
                data = stream.read(rate // 50, exception_on_overflow=False)
                pcm += resample(data)
                while len(pcm) >= FRAME_BYTES:
                    frame = bytes(pcm[:FRAME_BYTES])
                    del pcm[:FRAME_BYTES]
                    self._loop.call_soon_threadsafe(self._in.push, frame)
                next_at = _pace(next_at)
        except Exception as exc:  # noqa: BLE001 - an unplugged microphone ends the call
            log.warning("microphone failed: %s", exc)
            self.ended = self.ended or f"microphone failed: {exc}"
        finally:
            _close(stream)
            if self._loop is not None and not self._loop.is_closed():
                self._loop.call_soon_threadsafe(self._in.end)

    def _play(self, stream, rate: int) -> None:
        resample = _Resampler(RATE, rate)
        next_at = time.monotonic()
        try:
            for _ in range(MAX_FRAMES):
                if self._stop.is_set():
                    break
                frame = self._out.popleft() if self._out else SILENCE
                stream.write(resample(frame))
                next_at = _pace(next_at)
        except Exception as exc:  # noqa: BLE001 - unplugged speakers: the caller goes on
            log.warning("speakers failed: %s", exc)
        finally:
            _close(stream)

    async def receive(self) -> bytes | None:
        return await self._in.pop()

    def send(self, pcm: bytes) -> None:
        self._out.append(pcm)

    async def close(self, reason: str) -> None:
        if self.ended is None:
            self.ended = reason
        self._stop.set()
        self._in.end()
        for thread in self._threads:
            await asyncio.to_thread(thread.join, 2.0)
        with _quiet_stderr():
            self.pa.terminate()


def _pace(next_at: float) -> float:
    """Sleep until ``next_at`` if ahead of it; the next frame's time."""
    now = time.monotonic()
    if next_at - now > 0:
        time.sleep(next_at - now)
    elif now - next_at > 0.2:
        next_at = now  # the device (or the machine) stalled: do not burst to catch up
    return next_at + FRAME_S


def _close(stream) -> None:
    try:
        stream.stop_stream()
        stream.close()
    except Exception:  # noqa: BLE001 - a device gone mid-call cannot be closed politely
        pass


class _Resampler:
    """PCM16 mono from one rate to another, keeping the filter state across blocks."""

    def __init__(self, rate_in: int, rate_out: int) -> None:
        self._stream = None
        if rate_in != rate_out:
            import soxr

            self._stream = soxr.ResampleStream(rate_in, rate_out, 1, dtype="int16")

    def __call__(self, pcm: bytes) -> bytes:
        if self._stream is None:
            return pcm
        return self._stream.resample_chunk(np.frombuffer(pcm, "<i2")).tobytes()
