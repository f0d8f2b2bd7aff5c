"""Benchmark over real SIP calls: voice-to-voice and barge-in on the wire, capacity, pipecat.

    scripts/bench_sip [--parts v2v,barge,baseline,capacity] [--clips N] [--barge N]
                      [--levels 1,2,4,6,8,10] [--turns 3] [--json out/bench_sip.json]

Starts the whole server in-process (``serve.start``: SIP endpoint, call center, store) on
loopback with free ports and calls it with sipp, one sipp process per caller. Each caller
plays silence while the bot greets, then real recordings (``CLIPS``: the same 16 every run,
8 wideband and 8 Asterisk 8 kHz prompts, all under 8 s), as PCMU RTP, with silence after
each for the reply. The bot's RTP goes to a UDP port this script listens on.

Everything is timed ON THE WIRE: tcpdump captures loopback UDP while the calls run (kernel
timestamps, so neither this process's event loop nor sipp's scheduling moves them), and the
pcap is read afterwards:

- *caller's last speech sample*: each clip's speech end is computed offline from the clip
  itself as sent (μ-law decoded, 8 kHz): 10 ms frames; speech = runs of at least 3
  frames above max(95th-percentile level - 35 dB, 10th-percentile floor + 10 dB,
  -55 dBFS); the end of the last run is the last speech sample, the start of the first
  the onset. (Silero's end on the same audio is reported per clip beside it.) The RTP
  packet carrying that sample is found by payload (the file's 160-byte chunk) and sequence
  number; its capture time is the moment it left sipp.
- *bot's reply*: the first packet to the caller's listener after that moment that is not
  silence (peak |sample| above ``AUDIBLE``; the mixer sends digital zeros when nobody
  speaks). A turn where the bot was audible in the 600 ms before the speech end is not
  measured (counted as ``overlap``).
- *barge-in*: a second clip starts while the reply to the first plays; from the packet
  carrying its first speech sample to the last audible reply packet before the bot stays
  silent for 500 ms (longer than the pauses inside a reply). The server's own
  ``bot_reply_interrupted`` stop_ms (capture of the onset frame after the jitter buffer ->
  flush) is reported beside it.

The pipecat baseline is a plain pipecat voice pipeline in a fresh child process, after
the server has stopped: VADProcessor(SileroVADAnalyzer()) -> WhisperSTTService -> a reply step ->
PiperTTSService, services at their defaults except the model locations (offline: the same
tiny.en CTranslate2 directory and Piper voice files as the server). It is fed the same
clips (the same μ-law audio, decoded to 16 kHz) at real time; latency is the clip's last
speech sample (feed time of its 20 ms frame) -> first TTSAudioRawFrame out. The reply
text is the one our bot said to that clip in this run, so both synthesise the same words.

Capacity: N concurrent callers (started 0.7 s apart), each with several turns; V2V on the
wire and the server's per-call samples (asr_final and every other step) per level, which
steps break their budgets, model-queue waits (the bundle's shared workers), process CPU.

The benchmark's settings differ from the defaults only where a benchmark needs it:
escalation rules off (recordings are not customer requests: two "sorry?" replies would
hand every call to an agent and play hold music) and no admission limit. Never fails on a
threshold: it prints and writes JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import functools
import os
import shutil
import socket
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (puts the project on sys.path)
import numpy as np
from _common import ROOT, machine, p50_p95, run_benchmark, shared_data
from switchboard.telephony import g711
from switchboard.telephony.audio_file import load
from switchboard.telephony.resample import resample

#: The recordings, fixed so every run plays the same ones (paths under shared/data).
#: Chosen from refs.csv: 2-8 s, at least 6 words, and no pause inside the speech longer than
#: 150 ms (by the energy endpoint below), so each clip is one turn for the server's VAD
#: (192 ms of silence ends a turn); otherwise a reply to half a sentence would start
#: mid-clip and the turn's voice-to-voice would be ill-defined.
CLIPS = (
    # wideband (LibriSpeech, LibriVox, pocketsphinx, speechbrain, Picovoice), sent as 8 kHz
    "asr/librispeech_triton/1089-134686-0001.wav",
    "asr/pocketsphinx/librivox_sense_and_sensibility_01_austen_64kb-0870.wav",
    "asr/pocketsphinx/librivox_sense_and_sensibility_01_austen_64kb-0930.wav",
    "asr/pocketsphinx/cards_005.wav",
    "asr/pocketsphinx/forever_input_2_16k.wav",
    "asr/speechbrain/spk2_snt1.wav",
    "asr/speechbrain/spk2_snt4.wav",
    "asr/picovoice_cheetah/test_en.wav",
    # real 8 kHz telephone prompts (Asterisk)
    "asr/asterisk_8k/confbridge-pin-bad.wav",
    "asr/asterisk_8k/vm-forwardoptions.wav",
    "asr/asterisk_8k/vm-mailboxfull.wav",
    "asr/asterisk_8k/demo-nomatch.wav",
    "asr/asterisk_8k/cannot-complete-network-error.wav",
    "asr/asterisk_8k/get_information_first.wav",
    "asr/asterisk_8k/all-outgoing-lines-unavailable.wav",
    "asr/asterisk_8k/andnowstandby.wav",
)
RATE = 8000
CHUNK = 160  # PCMU samples (and bytes) per 20 ms packet
SILENT_BYTE = b"\xff"  # μ-law code of 0
#: A packet whose peak sample is above this is audible (-54 dBFS): above the codec's
#: resampling-filter tail after a reply ends, below any spoken sample of the bot's voice.
AUDIBLE = 64
LEAD_S = 4.5  # the greeting (~3.3 s) plays out before the caller speaks
REPLY_GAP_S = 5.0  # silence after a clip: the reply and then some
STOPPED_S = 0.5  # silence this long after a barge-in onset: the reply has stopped
BARGE_AFTER_S = 1.2  # the barge-in clip starts 1.2-1.8 s after the first clip's speech end
SCENARIO = ROOT / "tests" / "sipp" / "uac_audio.xml"


# --- the clips --------------------------------------------------------------------------


@dataclass
class Clip:
    """One recording as the caller sends it: 8 kHz μ-law, with its speech bounds."""

    path: str
    text: str
    subset: str
    ulaw: bytes
    onset: int  # first speech sample (8 kHz index)
    end: int  # one past the last speech sample
    longest_pause_ms: float  # inside the speech: over 192 ms, the server may split the turn
    silero_end_s: float  # cross-check of ``end`` by Silero VAD (32 ms windows)

    @property
    def duration_s(self) -> float:
        return len(self.ulaw) / RATE


def speech_bounds(pcm: np.ndarray, rate: int = RATE) -> tuple[int, int, float]:
    """(onset, end, longest inner pause in ms) by frame energy; see the module docstring."""
    hop = rate // 100
    n = len(pcm) // hop
    frames = pcm[: n * hop].astype(np.float64).reshape(n, hop)
    db = 20 * np.log10(np.sqrt((frames ** 2).mean(axis=1)) / 32768.0 + 1e-12)
    level, floor = np.percentile(db, 95), np.percentile(db, 10)
    # Relative to the speech level, and clear of a noisy recording's floor (LibriSpeech
    # clips sit at -50 dBFS of hiss throughout).
    threshold = max(level - 35.0, floor + 10.0, -55.0)
    loud = db > threshold
    # Runs shorter than 30 ms are clicks and breaths, not speech.
    speech: list[int] = []
    i = 0
    while i < n:
        if loud[i]:
            j = i
            while j < n and loud[j]:
                j += 1
            if j - i >= 3:
                speech += range(i, j)
            i = j
        else:
            i += 1
    if not speech:
        raise ValueError("no speech found")
    gaps = np.diff(speech) - 1
    return speech[0] * hop, (speech[-1] + 1) * hop, float(gaps.max(initial=0) * 10)


@functools.cache
def _silero():
    from switchboard.models.vad import make_scorer

    return make_scorer("silero")


def silero_end(pcm: np.ndarray) -> float:
    """Cross-check: end (s) of the last 32 ms window Silero scores as speech (p > 0.5)."""
    scorer = _silero()
    audio = resample(pcm.astype(np.float32) / 32768, RATE, 16000)
    pcm16 = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    step = 512
    last = 0.0
    for k in range(0, len(pcm16) - step + 1, step):
        if scorer.score(pcm16[k:k + step].tobytes()) > 0.5:
            last = (k + step) / 16000
    return last


def load_clip(data: Path, path: str, text: str) -> Clip:
    audio16 = load(data / path).audio
    pcm8 = (np.clip(resample(audio16, 16000, RATE), -1, 1) * 32767).astype(np.int16)
    ulaw = g711.ulaw_encode(pcm8)
    sent = g711.ulaw_decode(ulaw)  # what is on the wire
    onset, end, pause = speech_bounds(sent)
    subset = "asterisk_8k" if "asterisk_8k" in path else "wideband"
    return Clip(path, text, subset, ulaw, onset, end, pause, silero_end(sent))


# --- a caller's plan ---------------------------------------------------------------------


@dataclass
class Placed:
    """A clip placed in a party's audio at ``start`` (samples at that audio's rate: 8 kHz
    in bench_sip, 16 kHz in bench_assisted)."""

    clip: Clip
    start: int
    barge: bool = False  # played over the bot's reply to the previous clip

    @property
    def onset(self) -> int:
        return self.start + self.clip.onset

    @property
    def end(self) -> int:
        return self.start + self.clip.end


@dataclass
class Caller:
    """One sipp call: its audio, where each clip sits, and its ports."""

    name: str
    ulaw: bytes
    placed: list[Placed]
    rtp_port: int = 0  # our listener, where the bot's RTP arrives
    media_port: int = 0  # sipp's -mp
    sip_port: int = 0  # sipp's own SIP port
    rc: int | None = None
    output: str = ""
    call: Any = None  # the server's Call object, once matched

    @property
    def play_ms(self) -> int:
        return int(len(self.ulaw) / RATE * 1000)


def make_caller(name: str, turns: list[tuple[Clip, bool]], tail_s: float = REPLY_GAP_S,
                barge_after_s: float = BARGE_AFTER_S) -> Caller:
    """Lead silence, then each clip; a barge clip starts BARGE_AFTER_S after the previous
    clip's speech end (over the reply), any other after REPLY_GAP_S of silence."""
    chunks: list[bytes] = []
    placed: list[Placed] = []
    pos = int(LEAD_S * RATE)
    chunks.append(SILENT_BYTE * pos)
    for clip, barge in turns:
        if placed and barge:
            start = placed[-1].end + int(barge_after_s * RATE) - clip.onset
            pad = start - pos
            if pad < 0:
                raise ValueError("barge clip would overlap the previous one")
        else:
            pad = int(REPLY_GAP_S * RATE) if placed else 0
        chunks.append(SILENT_BYTE * pad)
        pos += pad
        placed.append(Placed(clip, pos, barge))
        chunks.append(clip.ulaw)
        pos += len(clip.ulaw)
    chunks.append(SILENT_BYTE * int(tail_s * RATE))
    ulaw = b"".join(chunks)
    ulaw += SILENT_BYTE * (-len(ulaw) % CHUNK)
    return Caller(name, ulaw, placed)


# --- ports, capture, pcap ------------------------------------------------------------------


def free_port(taken: set[int]) -> int:
    """An even port free on UDP and TCP with its +1 free too (RTP/RTCP pair)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
        if port % 2 or port > 65000 or port in taken or port + 1 in taken:
            continue
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                t.bind(("127.0.0.1", port))
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u2:
                u2.bind(("127.0.0.1", port + 1))
        except OSError:
            continue
        taken.update((port, port + 1))
        return port
    raise OSError("no free port pair")


@dataclass
class Packet:
    t: float  # capture time, epoch seconds (kernel timestamp)
    sport: int
    dport: int
    seq: int
    pt: int
    payload: bytes


@contextlib.contextmanager
def capture(path: Path, callers: list[Caller]) -> Iterator[None]:
    """tcpdump on loopback, restricted to the callers' RTP (sipp's media port, our
    listeners), for the duration of the block."""
    tcpdump = shutil.which("tcpdump")
    if tcpdump is None:
        raise SystemExit("error: tcpdump not installed (scripts/setup --test installs it)")
    ports = " or ".join(f"src port {c.media_port} or dst port {c.rtp_port}" for c in callers)
    proc = _popen([tcpdump, "-i", "lo", "-n", "-U", "-s", "256", "-w", str(path),
                   f"udp and ({ports})"])
    # Blocking here is harmless: no call is live before the block or after it.
    try:
        _wait_listening(proc)
        yield
    finally:
        time.sleep(0.3)  # the last packets reach the file (-U flushes per packet)
        proc.terminate()
        with contextlib.suppress(Exception):
            proc.wait(5)
        if proc.poll() is None:
            proc.kill()


def _popen(args: list[str]):
    import subprocess

    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_listening(proc) -> None:
    # tcpdump says "listening on lo" once the capture is open: calls start after that.
    deadline = time.monotonic() + 10
    line = b""
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if b"listening on" in line or not line:
            break
    if b"listening on" not in line:
        raise SystemExit(f"error: tcpdump did not start ({line.decode(errors='replace')})")
    # Keep draining stderr so tcpdump never blocks on a full pipe.
    threading.Thread(target=proc.stderr.read, daemon=True).start()


def read_pcap(path: Path) -> list[Packet]:
    """RTP packets of a classic pcap (Ethernet or Linux cooked link layer), IPv4/UDP."""
    data = path.read_bytes()
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    nano = magic in (0xA1B23C4D, 0x4D3CB2A1)
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    link_len = {1: 14, 113: 16, 276: 20}.get(linktype)
    if link_len is None:
        raise ValueError(f"unsupported pcap link type {linktype}")
    out: list[Packet] = []
    pos = 24
    while pos + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack(endian + "IIII", data[pos: pos + 16])
        frame = data[pos + 16: pos + 16 + incl]
        pos += 16 + incl
        if len(frame) < incl:
            break  # the record tcpdump was writing when it was stopped
        ip = frame[link_len:]
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        udp = ip[(ip[0] & 0x0F) * 4:]
        if len(udp) < 8:
            continue
        sport, dport, ulen = struct.unpack("!HHH", udp[:6])
        rtp = udp[8:ulen]
        if len(rtp) < 12 or rtp[0] >> 6 != 2:
            continue
        pt, seq = rtp[1] & 0x7F, struct.unpack("!H", rtp[2:4])[0]
        out.append(Packet(sec + frac * (1e-9 if nano else 1e-6), sport, dport, seq, pt,
                          rtp[12:]))
    return out


def audible(payload: bytes) -> bool:
    return bool(len(payload)) and int(np.abs(g711.ulaw_decode(payload)).max()) > AUDIBLE


# --- what the wire says about one call -----------------------------------------------------


@dataclass
class WireCall:
    """One caller's packets: what sipp sent (by file sample index) and what it heard."""

    sent_at: dict[int, float]  # chunk index in the caller's file -> capture time
    heard: list[tuple[float, bool]]  # (capture time, audible) of the bot's packets


def wire_call(caller: Caller, packets: list[Packet]) -> WireCall | None:
    """Match the caller's packets to its file by payload and sequence number."""
    sent = [p for p in packets if p.sport == caller.media_port and p.pt == 0]
    heard = [(p.t, audible(p.payload)) for p in packets
             if p.dport == caller.rtp_port and p.pt == 0]
    heard.sort()
    if not sent:
        return None
    chunks = {caller.ulaw[i: i + CHUNK]: i // CHUNK for i in range(0, len(caller.ulaw), CHUNK)
              if caller.ulaw[i: i + CHUNK].count(SILENT_BYTE) < CHUNK // 2}
    # One packet whose payload is unique speech anchors the sequence numbers to the file.
    anchor = next(((p.seq, chunks[p.payload]) for p in sent if p.payload in chunks), None)
    if anchor is None:
        return None
    sent_at: dict[int, float] = {}
    for p in sent:
        index = anchor[1] + ((p.seq - anchor[0] + 32768) % 65536 - 32768)
        sent_at.setdefault(index, p.t)
    return WireCall(sent_at, heard)


def sent_time(wire: WireCall, caller: Caller, sample: int) -> float | None:
    """Capture time of the packet carrying ``sample``, checked against the file."""
    return wire.sent_at.get(sample // CHUNK)


def v2v_turns(caller: Caller, wire: WireCall) -> list[dict]:
    """Per clip: last speech sample on the wire -> first audible bot packet after it."""
    turns = []
    for placed in caller.placed:
        row: dict[str, Any] = {"clip": placed.clip.path, "barge": placed.barge}
        t_end = sent_time(wire, caller, placed.end - 1)
        if t_end is None:
            turns.append(row | {"status": "lost"})
            continue
        # A reply still playing (maybe in a pause between phrases) would make the next
        # audible packet its own, not this turn's reply.
        before = [a for t, a in wire.heard if t_end - 0.6 <= t < t_end]
        if any(before):
            turns.append(row | {"status": "overlap"})
            continue
        reply = next((t for t, a in wire.heard if t >= t_end and a), None)
        next_onset = _next_onset(caller, placed, wire)
        if reply is None or (next_onset is not None and reply >= next_onset):
            turns.append(row | {"status": "no_reply"})
            continue
        v2v = (reply - t_end) * 1000
        # The same turn timed from where Silero (the server's VAD) puts the end offline:
        # how much of the wire figure is only where "the end of speech" is drawn.
        later_ms = (placed.clip.silero_end_s - placed.clip.end / RATE) * 1000
        turns.append(row | {"status": "ok", "v2v_ms": v2v, "v2v_from_silero_end_ms":
                            v2v - later_ms, "t_end": t_end, "t_reply": reply})
    return turns


def _next_onset(caller: Caller, placed: Placed, wire: WireCall) -> float | None:
    later = [p for p in caller.placed if p.start > placed.start]
    return sent_time(wire, caller, later[0].onset) if later else None


def barge_ins(caller: Caller, wire: WireCall) -> list[dict]:
    """Per barge clip: its first speech sample on the wire -> the last audible reply
    packet before the bot stays silent for STOPPED_S."""
    rows = []
    for placed in caller.placed:
        if not placed.barge:
            continue
        row: dict[str, Any] = {"clip": placed.clip.path}
        t_on = sent_time(wire, caller, placed.onset)
        if t_on is None:
            rows.append(row | {"status": "lost"})
            continue
        # Replies pause between phrases (Piper's commas: ~200 ms of near silence), so
        # "playing at the onset" means heard within the last 600 ms, not in the last packet.
        if not any(a for t, a in wire.heard if t_on - 0.6 <= t < t_on):
            rows.append(row | {"status": "bot_silent_at_onset"})
            continue
        last, run = None, 0
        for t, a in wire.heard:
            if t < t_on:
                continue
            if a:
                last, run = t, 0
            else:
                run += 1
                if run * 0.02 >= STOPPED_S:
                    break
        if last is None:
            # Cut while the reply was in a pause: nothing audible after the onset, so the
            # wire cannot say when it stopped; counted, not timed (0 ms would flatter).
            rows.append(row | {"status": "cut_in_pause"})
            continue
        rows.append(row | {"status": "ok", "stop_ms": (last - t_on) * 1000})
    return rows


# --- the server, the callers ---------------------------------------------------------------


class TimedExecutor(Executor):
    """Wraps a model's shared worker queue: how long work waited, how long it ran."""

    def __init__(self, inner: Executor, name: str, log: list[tuple[str, float, float, float]]):
        self._inner, self._name, self._log = inner, name, log

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:
        queued = time.monotonic()

        def timed() -> Any:
            start = time.monotonic()
            try:
                return fn(*args, **kwargs)
            finally:
                end = time.monotonic()
                self._log.append((self._name, end, (start - queued) * 1e3, (end - start) * 1e3))

        return self._inner.submit(timed)

    def shutdown(self, wait: bool = True, **kwargs: Any) -> None:
        self._inner.shutdown(wait, **kwargs)

    def __getattr__(self, name: str) -> Any:  # the queue's own state (idle, workers)
        return getattr(self._inner, name)


class Bench:
    """The server in this process, and sipp callers against it."""

    def __init__(self, settings, bundle, workdir: Path):
        self.settings = settings
        self.bundle = bundle
        self.workdir = workdir
        self.calls: list[Any] = []
        self.queue_log: list[tuple[str, float, float, float]] = []
        self.depths: dict[str, dict[str, list[int]]] = {}
        self.loop_lag: list[float] = []
        self.running = None
        self._ports: set[int] = set()

    async def start(self) -> None:
        from switchboard import serve

        orig_executor = self.bundle.executor
        # Observe the shared model queues (wait vs run): the capacity profile.
        self.bundle.executor = lambda model: TimedExecutor(orig_executor(model), model,
                                                           self.queue_log)
        self.running = await serve.start(self.settings, self.bundle)
        center = self.running.center
        orig_new_call = center.new_call

        def new_call(*args: Any, **kwargs: Any):
            call = orig_new_call(*args, **kwargs)
            self.calls.append(call)  # kept past its end: its samples and events
            return call

        center.new_call = new_call

    async def stop(self) -> None:
        from switchboard import serve

        if self.running is not None:
            await serve.stop(self.running)
            self.running = None

    async def run(self, callers: list[Caller], stagger_s: float, label: str) -> list[Packet]:
        """All callers, started ``stagger_s`` apart; returns the captured packets."""
        for c in callers:
            c.rtp_port = free_port(self._ports)
            c.media_port = free_port(self._ports)
            c.sip_port = free_port(self._ports)
        pcap = self.workdir / f"{label}.pcap"
        loop = asyncio.get_running_loop()
        sockets = []
        for c in callers:  # the bot's RTP (and RTCP) must land somewhere: drained here
            for port in (c.rtp_port, c.rtp_port + 1):
                tr, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                            local_addr=("127.0.0.1", port))
                sockets.append(tr)
        first_call = len(self.calls)
        sampler = asyncio.ensure_future(self._sample_queues())
        self.loop_lag = []
        lag = asyncio.ensure_future(self._sample_loop_lag())
        try:
            with capture(pcap, callers):
                tasks = []
                for i, c in enumerate(callers):
                    if i:
                        await asyncio.sleep(stagger_s)
                    tasks.append(asyncio.ensure_future(self._sipp(c)))
                longest = max(c.play_ms for c in callers) / 1000
                await asyncio.wait_for(asyncio.gather(*tasks), longest + stagger_s
                                       * len(callers) + 60)
                await self._wait_calls_ended(20.0)
        finally:
            sampler.cancel()
            lag.cancel()
            for tr in sockets:
                tr.close()
        self._match(callers, self.calls[first_call:])
        return read_pcap(pcap)

    async def _sipp(self, c: Caller) -> None:
        audio = self.workdir / f"{c.name}.ulaw"
        audio.write_bytes(c.ulaw)
        scenario = self.workdir / f"{c.name}.xml"
        scenario.write_text(SCENARIO.read_text().replace("[audio]", str(audio))
                            .replace("[playms]", str(c.play_ms)))
        timeout = c.play_ms // 1000 + 30
        assert self.running is not None
        proc = await asyncio.create_subprocess_exec(
            "sipp", "-sf", str(scenario), f"127.0.0.1:{self.running.sip.endpoint.port}",
            "-i", "127.0.0.1", "-p", str(c.sip_port), "-m", "1", "-nostdin", "-t", "u1",
            "-timeout", f"{timeout}s", "-timeout_error", "-mp", str(c.media_port),
            "-key", "rtpport", str(c.rtp_port),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout + 10)
        except TimeoutError:
            proc.kill()
            out, _ = await proc.communicate()
        c.rc = proc.returncode
        c.output = out.decode("utf-8", "replace")[-2000:]

    async def _sample_queues(self) -> None:
        """Every 50 ms, each live call's RTP queues, in 20 ms frames: the jitter buffer
        (caller -> graph) and the send queue between the mixer's tick and the RTP sender's
        (bot -> caller). Two clocks with a queue between them: its depth is added delay."""
        assert self.running is not None
        while True:
            for record in list(self.running.center.calls.values()):
                leg = record.call.legs.get("caller")
                session = getattr(getattr(leg, "edge", None), "session", None)
                if session is None:
                    continue
                depths = self.depths.setdefault(record.call.call_id, {"jitter": [], "send": []})
                depths["jitter"].append(len(session.jitter))
                depths["send"].append(len(getattr(session, "_out", ())))
            await asyncio.sleep(0.05)

    async def _sample_loop_lag(self) -> None:
        """How late a 20 ms sleep wakes up: the event loop runs every call's mixer, RTP
        sender and receiver, so its lag is delay added to every frame."""
        while True:
            t0 = time.monotonic()
            await asyncio.sleep(0.02)
            self.loop_lag.append((time.monotonic() - t0 - 0.02) * 1000)

    async def _wait_calls_ended(self, limit_s: float) -> None:
        assert self.running is not None
        deadline = time.monotonic() + limit_s
        while self.running.center.calls and time.monotonic() < deadline:
            await asyncio.sleep(0.2)

    @staticmethod
    def _match(callers: list[Caller], calls: list[Any]) -> None:
        # The server's caller edge sends to the port our listener has: that is the caller.
        by_port = {c.rtp_port: c for c in callers}
        for call in calls:
            leg = call.legs.get("caller")
            session = getattr(getattr(leg, "edge", None), "session", None)
            remote = getattr(session, "remote", None)
            if remote and remote[1] in by_port:
                by_port[remote[1]].call = call


def events_of(call: Any, kind: str) -> list[Any]:
    return [e for e in call.bus.history if e.kind == kind] if call is not None else []


def stats(values: list[float], budget: float | None = None) -> dict[str, Any]:
    p50, p95 = p50_p95(values)
    row: dict[str, Any] = {"n": len(values), "p50": round(p50, 1), "p95": round(p95, 1)}
    if budget is not None:
        row["budget"] = budget
    return row


def step_table(calls: list[Any], budgets: dict[str, Any]) -> dict[str, dict]:
    """Every timed step of these calls (their own samples), against its budget."""
    merged: dict[str, list[float]] = {}
    for call in calls:
        if call is None:
            continue
        for step, values in call.ctx.samples.samples.items():
            merged.setdefault(step, []).extend(values)
        for e in events_of(call, "bot_reply_interrupted"):
            merged.setdefault("barge_in", []).append(e.stop_ms)
    table = {}
    for step, values in merged.items():
        budget = budgets[step].budget_ms if step in budgets else None
        row = stats(values, budget)
        if budget is not None:
            row["breaches"] = sum(v > budget for v in values)
        table[step] = row
    return table


def over_budget(table: dict[str, dict], v2v_wire: dict[str, Any]) -> list[str]:
    """Steps whose p95 is over budget (asr_final: its p50, the issue's target), worst
    first by how far over."""
    over = []
    for step, row in table.items():
        budget = row.get("budget")
        if not budget or not row["n"]:
            continue
        value = row["p50"] if step == "asr_final" else row["p95"]
        if value > budget:
            over.append((value / budget, f"{step} {'p50' if step == 'asr_final' else 'p95'} "
                         f"{value:.0f}/{budget:.0f}"))
    if v2v_wire["n"] and v2v_wire["p95"] > 600:
        over.append((v2v_wire["p95"] / 600, f"wire v2v p95 {v2v_wire['p95']:.0f}/600"))
    return [text for _, text in sorted(over, reverse=True)]


def queue_table(log: list[tuple[str, float, float, float]], since: float) -> dict[str, dict]:
    rows: dict[str, dict] = {}
    for name in sorted({n for n, end, _, _ in log if end >= since}):
        waits = [w for n, end, w, _ in log if n == name and end >= since]
        runs = [r for n, end, _, r in log if n == name and end >= since]
        rows[name] = {"jobs": len(runs), "wait": stats(waits), "run": stats(runs),
                      "busy_s": round(sum(runs) / 1000, 1)}
    return rows


# --- the parts ----------------------------------------------------------------------------


async def part_v2v(bench: Bench, clips: list[Clip], budget: float) -> dict:
    """One call per clip, one after the other: V2V on the wire and the server's own."""
    callers = [make_caller(f"v2v{i:02d}", [(clip, False)]) for i, clip in enumerate(clips)]
    turns: list[dict] = []
    lags: list[float] = []
    for c in callers:
        packets = await bench.run([c], 0.0, c.name)
        lags += bench.loop_lag
        turns += _turns_of(c, packets)
        t = turns[-1]
        print(f"  {c.placed[0].clip.path}: {t['status']} "
              f"{t.get('v2v_ms', float('nan')):.0f} ms (server {t.get('server_v2v_ms', 0):.0f}"
              f") reply: {t.get('reply', '')!r}", flush=True)
    summary = _summary(turns, [c.call for c in callers], budget)
    summary["rtp_queues_frames"] = rtp_queues(bench, [c.call for c in callers])
    summary["loop_lag_ms"] = stats(lags) | {"max": round(max(lags, default=0), 1)}
    # Per call, once a second: (jitter buffer, send queue) depth in frames. A depth that
    # steps up after a stall and stays is delay the call keeps to its end.
    summary["rtp_depth_series"] = {
        c.name: list(zip(bench.depths[c.call.call_id]["jitter"][::20],
                         bench.depths[c.call.call_id]["send"][::20], strict=True))
        for c in callers if c.call is not None and c.call.call_id in bench.depths}
    return summary


def _turns_of(c: Caller, packets: list[Packet]) -> list[dict]:
    epoch = time.time() - time.monotonic()  # the server's monotonic times -> pcap time
    wire = wire_call(c, packets)
    if wire is None:
        return [{"clip": p.clip.path, "status": "no_packets", "sipp_rc": c.rc}
                for p in c.placed]
    turns = v2v_turns(c, wire)
    texts = {e.reply_id: e.text for e in events_of(c.call, "bot_reply")}
    clock = c.call.ctx.clock("caller") if c.call is not None else None
    # When each reply's first sample was out of the graph (the server's V2V point), in
    # pcap time: the reply whose first packet is the one the wire saw is the latest of
    # those out before it (the server's t_audio does not count from sipp's first packet:
    # the edge plays silence until the jitter buffer fills, so match by time instead).
    out: list[tuple[float, Any, float]] = []
    for e in events_of(c.call, "reply_audio"):
        if clock is not None:
            captured = clock.captured_at(e.t_audio)
            out.append((captured + e.latency_ms / 1000 + epoch, e, captured))
    for t in turns:
        t["sipp_rc"] = c.rc
        if "t_reply" not in t:
            continue
        before = [o for o in out if o[0] <= t["t_reply"] + 0.002 and o[0] > t["t_end"] - 1.0]
        if not before:
            continue
        at, event, captured = max(before, key=lambda o: o[0])
        t["reply"] = texts.get(event.reply_id, "")
        t["server_v2v_ms"] = round(event.latency_ms, 1)
        # Where the wire's time goes: sipp's packet -> the frame the server's VAD calls the
        # end of speech entering the graph (jitter buffer, pacing, and how late VAD puts the
        # end), the graph (the server's own V2V), first reply sample -> its packet on the
        # wire (mixer tick, send queue, send tick).
        t["ingress_ms"] = round((captured + epoch - t["t_end"]) * 1000, 1)
        t["egress_ms"] = round((t["t_reply"] - at) * 1000, 1)
    return turns


def rtp_queues(bench: Bench, calls: list[Any]) -> dict[str, dict]:
    """Jitter-buffer and send-queue depth (20 ms frames) sampled over these calls."""
    ids = {c.call_id for c in calls if c is not None}
    rows = {}
    for name in ("jitter", "send"):
        values = [v for cid, d in bench.depths.items() if cid in ids for v in d[name]]
        rows[name] = {"n": len(values), "p50": float(np.median(values)) if values else 0.0,
                      "max": max(values, default=0)}
    return rows


def _summary(turns: list[dict], calls: list[Any], budget: float) -> dict:
    ok = [t["v2v_ms"] for t in turns if t["status"] == "ok"]
    statuses: dict[str, int] = {}
    for t in turns:
        statuses[t["status"]] = statuses.get(t["status"], 0) + 1
    server = [e.latency_ms for c in calls for e in events_of(c, "reply_audio")]
    from_silero = [t["v2v_from_silero_end_ms"] for t in turns if t["status"] == "ok"]
    return {"wire": stats(ok, budget), "server": stats(server, budget), "statuses": statuses,
            "wire_from_silero_end": stats(from_silero, budget),
            "ingress": stats([t["ingress_ms"] for t in turns if "ingress_ms" in t]),
            "egress": stats([t["egress_ms"] for t in turns if "egress_ms" in t]),
            "turns": turns}


async def part_barge(bench: Bench, clips: list[Clip], count: int, budget: float) -> dict:
    """Calls where a second clip starts over the bot's reply to the first."""
    callers = []
    for i in range(count):
        first, second = clips[i % len(clips)], clips[(i + 5) % len(clips)]
        # The onset falls at different points of the reply (words, pauses between them).
        callers.append(make_caller(f"barge{i:02d}", [(first, False), (second, True)],
                                   barge_after_s=BARGE_AFTER_S + 0.2 * (i % 4)))
    rows: list[dict] = []
    for c in callers:
        packets = await bench.run([c], 0.0, c.name)
        wire = wire_call(c, packets)
        found = barge_ins(c, wire) if wire else [{"status": "no_packets"}]
        events = events_of(c.call, "bot_reply_interrupted")
        for row in found:
            row["server_stop_ms"] = [round(e.stop_ms, 1) for e in events]
            row["sipp_rc"] = c.rc
        rows += found
        r = found[-1]
        print(f"  {c.name}: {r['status']} {r.get('stop_ms', float('nan')):.0f} ms on the wire, "
              f"server {r['server_stop_ms']}", flush=True)
    wire_ms = [r["stop_ms"] for r in rows if r["status"] == "ok"]
    server_ms = [ms for r in rows for ms in r["server_stop_ms"]]
    return {"wire": stats(wire_ms, budget), "server": stats(server_ms, budget), "calls": rows}


async def part_capacity(bench: Bench, clips: list[Clip], levels: list[int], turns: int,
                        stagger_s: float, budgets: dict[str, Any]) -> list[dict]:
    """N concurrent callers per level, each with ``turns`` clips."""
    results = []
    v2v_budget = budgets["voice_to_voice"].budget_ms
    for n in levels:
        load1 = os.getloadavg()[0]
        callers = [make_caller(f"cap{n:02d}_{i:02d}",
                               [(clips[(i * turns + j) % len(clips)], False)
                                for j in range(turns)]) for i in range(n)]
        since = time.monotonic()
        cpu0, wall0 = os.times(), time.monotonic()
        packets = await bench.run(callers, stagger_s, f"capacity{n:02d}")
        cpu1, wall1 = os.times(), time.monotonic()
        all_turns = [t for c in callers for t in _turns_of(c, packets)]
        summary = _summary(all_turns, [c.call for c in callers], v2v_budget)
        table = step_table([c.call for c in callers], budgets)
        degraded = [f"{e.stage}->{e.rung}" for c in callers for e in events_of(c.call,
                                                                             "stage_degraded")]
        cpu_s = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
        # sipp and tcpdump run beside the server on the same two cores (a real caller would
        # not): their share is what the server did not get.
        child_s = (cpu1.children_user - cpu0.children_user) + (cpu1.children_system
                                                               - cpu0.children_system)
        row = {"calls": n, "load1_at_start": load1, "sipp_failures": sum(bool(c.rc)
                                                                        for c in callers),
               "matched_calls": sum(c.call is not None for c in callers),
               "v2v_wire": summary["wire"], "v2v_server": summary["server"],
               "turn_statuses": summary["statuses"], "steps": table,
               "over_budget": over_budget(table, summary["wire"]),
               "degraded": degraded, "queues": queue_table(bench.queue_log, since),
               "rtp_queues_frames": rtp_queues(bench, [c.call for c in callers]),
               "ingress": summary["ingress"], "egress": summary["egress"],
               "loop_lag_ms": stats(bench.loop_lag) | {"max": round(max(bench.loop_lag,
                                                                         default=0), 1)},
               "process_cpu_pct": round(100 * cpu_s / (wall1 - wall0), 1),
               "sipp_tcpdump_cpu_pct": round(100 * child_s / (wall1 - wall0), 1),
               "wall_s": round(wall1 - wall0, 1)}
        for q in row["queues"].values():
            q["busy_pct"] = round(100 * q["busy_s"] / row["wall_s"], 1)
        row["budgets_met"] = (summary["wire"]["n"] > 0 and summary["wire"]["p95"] <= v2v_budget
                              and table.get("asr_final", {}).get("p50", 1e9)
                              <= budgets["asr_final"].budget_ms)
        results.append(row)
        asr = table.get("asr_final", {"p50": float("nan"), "p95": float("nan")})
        print(f"  N={n:2d}: wire V2V p50/p95 {row['v2v_wire']['p50']:.0f}/"
              f"{row['v2v_wire']['p95']:.0f} ms (n={row['v2v_wire']['n']}), asr_final "
              f"{asr['p50']:.0f}/{asr['p95']:.0f}, cpu {row['process_cpu_pct']:.0f}%, asr "
              f"queue wait p95 {row['queues'].get('asr', {}).get('wait', {}).get('p95', 0):.0f}"
              f" ms, loop lag p95 {row['loop_lag_ms']['p95']:.0f} ms, "
              f"over: {', '.join(row['over_budget']) or '-'}; degraded: "
              f"{sorted(set(degraded)) or '-'}", flush=True)
    return results


# --- the pipecat baseline -----------------------------------------------------------------


async def part_baseline(clips: list[Clip], replies: dict[str, str]) -> dict:
    """A plain pipecat pipeline on the same clips at real time (see module docstring)."""
    from loguru import logger
    from pipecat.audio.vad.silero import SileroVADAnalyzer
    from pipecat.frames.frames import (
        EndFrame,
        InputAudioRawFrame,
        TranscriptionFrame,
        TTSAudioRawFrame,
        TTSSpeakFrame,
    )
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.worker import PipelineParams, PipelineWorker
    from pipecat.processors.audio.vad_processor import VADProcessor
    from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
    from pipecat.services.piper.tts import PiperTTSService
    from pipecat.services.whisper.stt import WhisperSTTService
    from pipecat.workers.runner import WorkerRunner
    from switchboard.models.registry import PIPER_JOE, locate, whisper_dir

    logger.remove()
    state: dict[str, Any] = {"clip": None, "t_end": None, "first": {}, "texts": {},
                             "asked": {}}

    class Reply(FrameProcessor):
        """Stands in for the LLM: says what our bot said to this clip."""

        async def process_frame(self, frame, direction: FrameDirection) -> None:
            await super().process_frame(frame, direction)
            if isinstance(frame, TranscriptionFrame) and state["clip"] is not None:
                state["texts"].setdefault(state["clip"], []).append(frame.text)
                text = replies.get(state["clip"]) or "Sorry, could you say that again?"
                # A reply asked for before the speech ended (a pause mid-clip) is not the
                # turn's reply: only audio of one asked for after the end is timed.
                if state["t_end"] is not None:
                    state["asked"].setdefault(state["clip"], time.monotonic())
                await self.push_frame(TTSSpeakFrame(text), direction)
                return
            await self.push_frame(frame, direction)

    class Out(FrameProcessor):
        """Stands in for the output transport: notes the first TTS audio of each turn."""

        async def process_frame(self, frame, direction: FrameDirection) -> None:
            await super().process_frame(frame, direction)
            if (isinstance(frame, TTSAudioRawFrame) and state["clip"] in state["asked"]
                    and state["clip"] not in state["first"]):
                state["first"][state["clip"]] = time.monotonic()
            await self.push_frame(frame, direction)

    stt = WhisperSTTService(settings=WhisperSTTService.Settings(
        model=str(whisper_dir("tiny.en"))))
    tts = PiperTTSService(settings=PiperTTSService.Settings(voice="en_US-joe-medium"),
                          download_dir=locate(PIPER_JOE))
    pipeline = Pipeline([VADProcessor(vad_analyzer=SileroVADAnalyzer()), stt, Reply(), tts,
                         Out()])
    task = PipelineWorker(pipeline, params=PipelineParams(audio_in_sample_rate=16000,
                                                          audio_out_sample_rate=16000))
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(task)
    run = asyncio.ensure_future(runner.run())
    await asyncio.sleep(1.0)

    async def feed(pcm16: np.ndarray, clip: str | None, end_sample: int | None) -> None:
        # 20 ms frames on absolute deadlines of the monotonic clock: a live caller.
        t0 = time.monotonic()
        for k in range(0, len(pcm16), 320):
            await asyncio.sleep(max(0.0, t0 + k / 16000 - time.monotonic()))
            if end_sample is not None and k <= end_sample < k + 320:
                state["t_end"] = time.monotonic()
            await task.queue_frame(InputAudioRawFrame(pcm16[k:k + 320].tobytes(), 16000, 1))

    def telephone(clip: Clip) -> np.ndarray:
        pcm8 = g711.ulaw_decode(clip.ulaw).astype(np.float32) / 32768
        return (np.clip(resample(pcm8, RATE, 16000), -1, 1) * 32767).astype(np.int16)

    rows = []
    # One unmeasured turn first: our server's models are warm too (bundle.warm_up()).
    state.update(clip="warm-up", t_end=None)
    await feed(np.zeros(16000, np.int16), None, None)
    await feed(telephone(clips[-1]), "warm-up", (clips[-1].end - 1) * 2)
    await feed(np.zeros(int(REPLY_GAP_S * 16000), np.int16), None, None)
    for clip in clips:
        pcm16 = telephone(clip)
        state.update(clip=clip.path, t_end=None)
        await feed(pcm16, clip.path, (clip.end - 1) * 2)
        await feed(np.zeros(int(REPLY_GAP_S * 16000), np.int16), clip.path, None)
        first = state["first"].get(clip.path)
        row: dict[str, Any] = {"clip": clip.path, "heard": " ".join(state["texts"].get(
            clip.path, []))}
        if first is not None and state["t_end"] is not None:
            row["v2v_ms"] = round((first - state["t_end"]) * 1000, 1)
            # Its parts: VAD's stop wait + Whisper (speech end -> transcript), Piper
            # (transcript -> first audio).
            asked = state["asked"][clip.path]
            row["to_transcript_ms"] = round((asked - state["t_end"]) * 1000, 1)
            row["to_audio_ms"] = round((first - asked) * 1000, 1)
        rows.append(row)
        print(f"  {clip.path}: {row.get('v2v_ms', float('nan')):.0f} ms (transcript "
              f"{row.get('to_transcript_ms', float('nan')):.0f}, then audio "
              f"{row.get('to_audio_ms', float('nan')):.0f}) heard {row['heard']!r}", flush=True)
    await task.queue_frame(EndFrame())
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(run, 30)
    values = [r["v2v_ms"] for r in rows if "v2v_ms" in r]
    return {"v2v": stats(values), "clips": rows,
            "to_transcript": stats([r["to_transcript_ms"] for r in rows if "v2v_ms" in r]),
            "to_audio": stats([r["to_audio_ms"] for r in rows if "v2v_ms" in r]),
            "services": {"stt": "WhisperSTTService(model=<tiny.en dir>) — device auto, "
                                "compute_type default, no_speech_prob 0.4",
                         "tts": "PiperTTSService(voice en_US-joe-medium, download_dir="
                                "<installed voice dir>)",
                         "vad": "VADProcessor(SileroVADAnalyzer()) — VADParams defaults"}}


async def baseline_process(paths: list[str], replies: dict[str, str], workdir: Path) -> dict:
    """Run :func:`part_baseline` in a child process: nothing of our server's process (its
    BLAS thread limit, its model workers, warm caches) may help or hinder the baseline."""
    import json

    job, out = workdir / "baseline_in.json", workdir / "baseline_out.json"
    job.write_text(json.dumps({"paths": paths, "replies": replies}))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--baseline-worker", str(job), str(out))
    try:
        await asyncio.wait_for(proc.wait(), 120 + 15 * len(paths))
    except TimeoutError:
        proc.kill()
        await proc.wait()
    if proc.returncode or not out.exists():
        return {"error": f"baseline process exited {proc.returncode}", "v2v": stats([])}
    return json.loads(out.read_text())


def baseline_worker(job: Path, out: Path) -> None:
    """The child's side of :func:`baseline_process`."""
    import json

    spec = json.loads(job.read_text())
    data = shared_data()
    clips = [load_clip(data, p, "") for p in spec["paths"]]
    out.write_text(json.dumps(asyncio.run(part_baseline(clips, spec["replies"]))))


# --- main ---------------------------------------------------------------------------------


def bench_settings(store_dir: Path):
    from switchboard.config import load_settings

    settings = load_settings(None)
    settings.store.url = f"sqlite:///{store_dir / 'calls.db'}"
    settings.sip.port = 0
    settings.server.http_port = 0
    settings.server.max_calls = 0  # no admission limit: capacity is what we measure
    # Recordings are not customer requests: without this, two "sorry?" replies hand the
    # call to an agent (hold music on the wire, no more turns).
    settings.escalation = dataclasses.replace(
        settings.escalation, misunderstood_in_a_row=10_000, anger_threshold=11.0,
        ask_for_person=False)
    return settings


def print_table(result: dict) -> None:
    def line(name: str, row: dict) -> str:
        budget = f"{row['budget']:8.0f}" if row.get("budget") else " " * 8
        return f"{name:34} {row['n']:4d} {row['p50']:8.1f} {row['p95']:8.1f} {budget}"

    if {"v2v", "barge_in", "baseline"} & set(result):
        print(f"\n{'measure':34} {'n':>4} {'p50 ms':>8} {'p95 ms':>8} {'budget':>8}")
    if "v2v" in result:
        print(line("voice_to_voice (wire)", result["v2v"]["wire"]))
        print(line("  the same, from Silero's end", result["v2v"]["wire_from_silero_end"]))
        print(line("voice_to_voice (server's own)", result["v2v"]["server"]))
        print(line("  wire end -> server's end frame", result["v2v"]["ingress"]))
        print(line("  server's first sample -> wire", result["v2v"]["egress"]))
    if "barge_in" in result:
        print(line("barge_in stop (wire)", result["barge_in"]["wire"]))
        print(line("barge_in stop (server's stop_ms)", result["barge_in"]["server"]))
    if "baseline" in result:
        print(line("pipecat baseline (in-process)", result["baseline"]["v2v"]))
        for key, what in (("ratio", "ours on the wire"),
                          ("ratio_in_process", "our graph's own V2V")):
            if key in result:
                r = result[key]
                print(f"baseline / {what} (same {r['clips']} clips): p50 {r['p50']:.2f}x, "
                      f"p95 {r['p95']:.2f}x")
    if "capacity" in result:
        print(f"\n{'calls':>5} {'wire v2v p50/p95':>18} {'asr_final p50/p95':>18} "
              f"{'cpu%':>5}  met  over budget")
        for row in result["capacity"]:
            asr = row["steps"].get("asr_final", {"p50": float("nan"), "p95": float("nan")})
            print(f"{row['calls']:5d} {row['v2v_wire']['p50']:8.0f} / {row['v2v_wire']['p95']:6.0f}"
                  f"  {asr['p50']:8.0f} / {asr['p95']:6.0f} {row['process_cpu_pct']:5.0f}  "
                  f"{'yes' if row['budgets_met'] else 'no ':3}  "
                  f"{', '.join(row['over_budget'][:3]) or '-'}")
        # The per-stage table by level (the server's own samples): where it breaks first.
        levels = result["capacity"]
        steps = sorted({s for r in levels for s in r["steps"]})
        print(f"\n{'step p50/p95 ms by calls':26}" + "".join(f"{r['calls']:>13d}" for r in levels)
              + "   budget")
        for step in steps:
            cells, budget = [], None
            for r in levels:
                row = r["steps"].get(step)
                budget = budget or (row or {}).get("budget")
                cells.append(f"{row['p50']:6.0f}/{row['p95']:<6.0f}" if row else " " * 13)
            print(f"{step:26}" + "".join(f"{c:>13}" for c in cells)
                  + (f" {budget:8.0f}" if budget else ""))
        for name, key in (("asr queue wait p95", "wait"), ("asr busy %", "busy_pct")):
            cells = []
            for r in levels:
                q = r["queues"].get("asr", {})
                value = q.get(key, {}).get("p95", 0) if key == "wait" else q.get(key, 0)
                cells.append(f"{value:13.0f}")
            print(f"{name:26}" + "".join(cells))
        print(f"{'event loop lag p95':26}" + "".join(f"{r['loop_lag_ms']['p95']:13.0f}"
                                                   for r in levels))
        print(f"{'send queue p50 (frames)':26}" + "".join(
            f"{r['rtp_queues_frames']['send']['p50']:13.0f}" for r in levels))
        held = [r["calls"] for r in result["capacity"] if r["budgets_met"]]
        print(f"calls held with every budget met: {max(held) if held else 0}")


def code_state() -> dict[str, Any]:
    """The commit measured, and any tracked file changed in the working tree (a shared
    checkout: the figures belong to what was on disk, not only to the commit)."""
    import subprocess

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                                  timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            return ""

    changed = [line[3:] for line in git("status", "--porcelain", "--untracked-files=no")
               .splitlines()]
    return {"commit": git("rev-parse", "--short", "HEAD").strip(), "changed": changed}


def markdown(result: dict) -> str:
    """The result as the tables of docs/benchmarks.md (``--markdown out/bench_sip.json``)."""
    out: list[str] = []

    def cell(row: dict | None) -> str:
        return f"{row['p50']:.0f} / {row['p95']:.0f}" if row and row.get("n") else "—"

    m = result["machine"]
    code = result.get("code", {})
    out.append(f"Code: {code.get('commit', '?')}"
               + (f" plus uncommitted changes to {', '.join(code['changed'])}"
                  if code.get("changed") else "") + ".")
    out.append(f"Machine: {m['cores']} cores ({m['cpu']}), load average at start "
               f"{' / '.join(f'{x:.2f}' for x in m['loadavg_at_start'])}, at end "
               f"{' / '.join(f'{x:.2f}' for x in m['loadavg_at_end'])}; {m['started']}.\n")
    out.append("| measure | n | p50 / p95 ms | budget ms |")
    out.append("|---|---:|---:|---:|")
    rows = []
    if "v2v" in result:
        v = result["v2v"]
        rows += [("**voice-to-voice on the wire**", v["wire"], 600),
                 ("the same turns, timed from Silero's end of speech", v["wire_from_silero_end"],
                  600),
                 ("voice-to-voice, the server's own (graph)", v["server"], 600),
                 ("of the wire's: sipp's packet → the server's end-of-speech frame in the graph",
                  v["ingress"], None),
                 ("of the wire's: first reply sample → its packet on the wire", v["egress"],
                  None)]
    if "barge_in" in result:
        b = result["barge_in"]
        rows += [("**barge-in stop on the wire**", b["wire"], 300),
                 ("barge-in stop_ms, the server's own", b["server"], 300)]
    if "baseline" in result:
        rows.append(("plain pipecat pipeline (in-process, no network)",
                     result["baseline"]["v2v"], None))
        rows.append(("of which speech end → transcript", result["baseline"]["to_transcript"],
                     None))
        rows.append(("of which transcript → first TTS audio", result["baseline"]["to_audio"],
                     None))
    for name, row, budget in rows:
        out.append(f"| {name} | {row['n']} | {cell(row)} | {budget or ''} |")
    for key, what in (("ratio", "ours on the wire"), ("ratio_in_process", "our graph's own")):
        if key in result:
            r = result[key]
            out.append(f"\npipecat / {what}, same {r['clips']} clips: p50 {r['p50']:.2f}×, "
                       f"p95 {r['p95']:.2f}×")
    if "capacity" in result:
        levels = result["capacity"]
        out.append("\n| calls | wire V2V p50 / p95 | asr_final p50 / p95 | server V2V p50 / p95 "
                   "| asr queue wait p95 | asr busy | process CPU | sipp+tcpdump CPU "
                   "| loop lag p95 / max | send queue p50 | load | met |")
        out.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for r in levels:
            q = r["queues"].get("asr", {})
            out.append(
                f"| {r['calls']} | {cell(r['v2v_wire'])} | {cell(r['steps'].get('asr_final'))}"
                f" | {cell(r['v2v_server'])} | {q.get('wait', {}).get('p95', 0):.0f} ms"
                f" | {q.get('busy_pct', 0):.0f}% | {r['process_cpu_pct']:.0f}%"
                f" | {r['sipp_tcpdump_cpu_pct']:.0f}%"
                f" | {r['loop_lag_ms']['p95']:.0f} / {r['loop_lag_ms']['max']:.0f} ms"
                f" | {r['rtp_queues_frames']['send']['p50']:.0f}"
                f" | {r['load1_at_start']:.2f} | {'yes' if r['budgets_met'] else 'no'} |")
        steps = sorted({s for r in levels for s in r["steps"]})
        out.append("\n| step (server's samples), p50 / p95 ms | "
                   + " | ".join(f"{r['calls']} calls" for r in levels) + " | budget |")
        out.append("|---|" + "---:|" * (len(levels) + 1))
        for step in steps:
            budget = next((r["steps"][step].get("budget") for r in levels
                           if step in r["steps"]), None)
            out.append(f"| {step} | " + " | ".join(cell(r["steps"].get(step)) for r in levels)
                       + f" | {budget or ''} |")
        out.append("\nDegraded per level: " + "; ".join(
            f"{r['calls']}: {', '.join(sorted(set(r['degraded']))) or '—'}" for r in levels))
    return "\n".join(out)


async def amain(args: argparse.Namespace) -> dict:
    from switchboard.models.bundle import ModelBundle

    data = shared_data()
    refs = {r["path"]: r["text"] for r in _common.asr_refs(data)}
    clips = [load_clip(data, p, refs[p]) for p in CLIPS]
    if args.clips:
        # Keep both subsets in a short run: alternate wideband and 8 kHz.
        half = len(clips) // 2
        mixed = [c for pair in zip(clips[:half], clips[half:], strict=True) for c in pair]
        clips = mixed[: args.clips]
    parts = set(args.parts.split(","))
    workdir = Path(tempfile.mkdtemp(prefix="bench_sip-"))
    settings = bench_settings(workdir)
    settings.nlu.kb_dir = str(data / "kb" / "abcd")
    bundle = ModelBundle(settings)
    bundle.warm_up()
    budgets = settings.budgets.budgets
    result: dict[str, Any] = {
        "machine": machine() | {"loadavg_at_start": list(os.getloadavg()),
                                "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
        "clips": [{"path": c.path, "subset": c.subset, "duration_s": round(c.duration_s, 2),
                   "speech_s": [round(c.onset / RATE, 3), round(c.end / RATE, 3)],
                   "silero_end_s": round(c.silero_end_s, 3),
                   "longest_pause_ms": c.longest_pause_ms} for c in clips],
        "method": {"audible_peak": AUDIBLE, "lead_s": LEAD_S, "reply_gap_s": REPLY_GAP_S,
                   "barge_after_s": [BARGE_AFTER_S, BARGE_AFTER_S + 0.6],
                   "endpoint": "runs >= 30 ms of 10 ms frames above max(p95 level - 35 dB,"
                               " p10 floor + 10 dB, -55 dBFS), on the μ-law audio sent",
                   "barge_stopped_s": STOPPED_S},
    }
    result["code"] = code_state()
    bench = Bench(settings, bundle, workdir)
    await bench.start()
    try:
        if "v2v" in parts:
            print(f"voice-to-voice: {len(clips)} calls, one clip each", flush=True)
            result["v2v"] = await part_v2v(bench, clips, budgets["voice_to_voice"].budget_ms)
        if "barge" in parts and args.barge:
            print(f"barge-in: {args.barge} calls", flush=True)
            result["barge_in"] = await part_barge(bench, clips, args.barge,
                                                  budgets["barge_in"].budget_ms)
        if "capacity" in parts:
            levels = [int(x) for x in args.levels.split(",") if x]
            print(f"capacity: levels {levels}, {args.turns} turns per call", flush=True)
            result["capacity"] = await part_capacity(bench, clips, levels, args.turns,
                                                     args.stagger, budgets)
    finally:
        await bench.stop()
    if "baseline" in parts:
        replies = {t["clip"]: t["reply"] for t in result.get("v2v", {}).get("turns", [])
                   if t.get("reply")}
        print("pipecat baseline: same clips, real time, in a fresh process", flush=True)
        result["baseline"] = await baseline_process([c.path for c in clips], replies, workdir)
        if "v2v" in result:
            ours = {t["clip"]: t["v2v_ms"] for t in result["v2v"]["turns"] if "v2v_ms" in t}
            base = {r["clip"]: r["v2v_ms"] for r in result["baseline"]["clips"]
                    if "v2v_ms" in r}
            both = sorted(set(ours) & set(base))
            o50, o95 = p50_p95([ours[c] for c in both])
            b50, b95 = p50_p95([base[c] for c in both])
            result["ratio"] = {"clips": len(both), "ours": [o50, o95], "baseline": [b50, b95],
                               "p50": b50 / o50 if o50 else float("nan"),
                               "p95": b95 / o95 if o95 else float("nan")}
            # Like for like too: the baseline has no network edge, so against our graph's
            # own figure (ReplyAudioStarted, also measured inside the process).
            own = {t["clip"]: t["server_v2v_ms"] for t in result["v2v"]["turns"]
                   if "server_v2v_ms" in t}
            both = sorted(set(own) & set(base))
            s50, s95 = p50_p95([own[c] for c in both])
            b50, b95 = p50_p95([base[c] for c in both])
            result["ratio_in_process"] = {"clips": len(both), "ours": [s50, s95],
                                          "baseline": [b50, b95],
                                          "p50": b50 / s50 if s50 else float("nan"),
                                          "p95": b95 / s95 if s95 else float("nan")}
    result["machine"]["loadavg_at_end"] = list(os.getloadavg())
    if args.keep:
        # The captures, callers' audio and scenarios, for a second look at a figure.
        shutil.copytree(workdir, args.keep, dirs_exist_ok=True)
        result["pcaps"] = args.keep
    shutil.rmtree(workdir, ignore_errors=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", default="v2v,barge,baseline,capacity")
    ap.add_argument("--clips", type=int, default=0, help="use the first N clips (0 = all 16)")
    ap.add_argument("--barge", type=int, default=8, help="barge-in calls")
    ap.add_argument("--levels", default="1,2,4,6,8,10", help="concurrent calls per level")
    ap.add_argument("--turns", type=int, default=3, help="clips per call in the capacity part")
    ap.add_argument("--stagger", type=float, default=0.7, help="seconds between call starts")
    ap.add_argument("--json", default="out/bench_sip.json")
    ap.add_argument("--keep", default="", help="copy the pcaps and callers' audio here")
    ap.add_argument("--markdown", default="", help="print a result JSON as markdown; no run")
    ap.add_argument("--baseline-worker", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.baseline_worker:
        from loguru import logger

        logger.remove()
        baseline_worker(Path(args.baseline_worker[0]), Path(args.baseline_worker[1]))
        return
    if args.markdown:
        import json

        print(markdown(json.loads(Path(args.markdown).read_text())))
        return
    run_benchmark(amain, args, print_table)


if __name__ == "__main__":
    main()
