"""Human-readable rendering of a call's events and its latency table."""

from __future__ import annotations

import math
import sys
from typing import TextIO

from switchboard.pipeline.events import Event


def _ms(value: float | None) -> str:
    return "" if value is None else f"+{value:.0f} ms"


def describe(event: Event) -> str | None:
    """One timeline line for ``event``; None for events too fine-grained to print."""
    k = event.kind
    e = event
    if k == "speech_started":
        return f"speech started (utterance {e.utterance})"
    if k == "speech_ended":
        return f"speech ended after {e.t_audio - e.t_start:.2f} s  ({_ms(e.latency_ms)})"
    if k == "transcript_partial":
        return f"partial    \"{e.text}\"  ({_ms(e.latency_ms)})"
    if k == "transcript_final":
        return f"FINAL      \"{e.text}\"  ({_ms(e.latency_ms)} after end of speech, {e.model})"
    if k == "prosody":
        return (f"prosody    F0 {e.f0_median_hz:.0f} Hz, range {e.f0_range_st:.1f} st, "
                f"rate {e.speaking_rate_sps:.1f} syl/s, level {e.energy_db:.0f} dBFS "
                f"(rolling F0 {e.rolling.get('f0_median_hz', 0):.0f} Hz)")
    if k == "emotion":
        reference = "own baseline" if e.baseline_ready else "learning baseline"
        voice_only = ", voice features only" if e.heads == "voice" else ""
        return (f"emotion    anger {e.anger:.1f}/10 (rolling {e.rolling_anger:.1f}), stress "
                f"{e.stress:.1f}/10 (rolling {e.rolling_stress:.1f}), {reference}{voice_only}")
    if k == "intent":
        others = ", ".join(f"{name} {score:.2f}" for name, score in e.candidates[1:])
        return f"intent     {e.intent} ({e.confidence:.2f})" + (f"  [{others}]" if others else "")
    if k == "knowledge":
        hits = " | ".join(f"{p.title} {p.score:.2f}" for p in e.passages)
        return f"knowledge  {hits or '(none)'}"
    if k == "bot_reply":
        return f"bot reply  \"{e.text}\""
    if k == "reply_audio":
        return (f"bot audio  first sample {_ms(e.latency_ms)} after end of speech "
                f"(TTS {e.tts_ms:.0f} ms, {e.duration_s:.1f} s)")
    if k == "turn_resumed":
        return f"withdrawn  reply {e.reply_id}: the caller was still talking"
    if k == "stage_degraded":
        return f"DEGRADED   {e.stage} → {e.rung} ({e.reason})"
    if k == "stage_error":
        return f"ERROR      {e.stage}: {e.error}"
    return None


class TimelinePrinter:
    """A bus subscriber that prints each notable event as it happens."""

    def __init__(self, out: TextIO | None = None):
        self._out = out  # None: whatever sys.stdout is when an event is printed

    def __call__(self, event: Event) -> None:
        line = describe(event)
        if line is not None:
            who = "bot   " if event.kind in ("bot_reply", "reply_audio") else f"{event.leg:6}"
            print(f"{event.t_audio:7.2f}s  {who}  {line}", file=self._out or sys.stdout,
                  flush=True)


class OrderedTimelinePrinter(TimelinePrinter):
    """A timeline of several legs, printed in audio-time order.

    Each leg's graph runs at its own pace (in fast mode, one may be seconds of audio
    ahead of the other), so events reach the bus out of audio order. Lines are held
    until every leg's audio has passed them by ``horizon_s`` (the slowest result, a
    final transcript, comes that long after its audio), then printed sorted by audio
    time; :meth:`flush` prints the rest at the end of the call.
    """

    def __init__(self, legs: list[str] | tuple[str, ...], out: TextIO | None = None,
                 horizon_s: float = 5.0):
        super().__init__(out)
        self._legs = tuple(legs)
        self._horizon_s = horizon_s
        self._seen = dict.fromkeys(self._legs, 0.0)  # the latest audio time of each leg
        self._held: list[tuple[float, int, Event]] = []
        self._n = 0

    def __call__(self, event: Event) -> None:
        if event.leg in self._seen:
            self._seen[event.leg] = max(self._seen[event.leg], event.t_audio)
        if describe(event) is not None:
            self._n += 1
            self._held.append((event.t_audio, self._n, event))
        self._release(min(self._seen.values()) - self._horizon_s)

    def _release(self, upto: float) -> None:
        self._held.sort(key=lambda item: item[:2])
        while self._held and self._held[0][0] <= upto:
            super().__call__(self._held.pop(0)[2])

    def flush(self) -> None:
        """Print every line still held (the call is over)."""
        self._release(math.inf)


def latency_lines(table: dict[str, dict[str, float]], realtime: bool = True) -> list[str]:
    """The latency table; ``realtime=False`` (``--fast``) says what its figures are."""
    lines = [] if realtime else [
        "fast mode: the figures are processing time under backlog (the audio was queued "
        "faster than real time), not what a caller on the line would wait"]
    lines += [f"{'stage':18} {'n':>4} {'p50 ms':>8} {'p95 ms':>8} {'budget':>8}  status",
             "-" * 60]
    for step, row in table.items():
        if row["n"] == 0:
            lines.append(f"{step:18} {0:4d} {'-':>8} {'-':>8} {row['budget']:8.0f}  no samples")
            continue
        over = not math.isnan(row["budget"]) and row["p50"] > row["budget"]
        lines.append(f"{step:18} {row['n']:4d} {row['p50']:8.1f} {row['p95']:8.1f} "
                     f"{row['budget']:8.0f}  {'OVER' if over else 'ok'}")
    return lines
