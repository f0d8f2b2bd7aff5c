"""Benchmark: how many assisted calls one process holds with every budget met.

    scripts/bench_assisted [--levels 1,2,4,6,8] [--turns 10] [--stagger 0.7]
                           [--json out/bench_assisted.json]
    scripts/bench_assisted --markdown out/bench_assisted.json   (print a result; no run)

An *assisted call* is a call a human agent has taken over, with the coach on: both legs
analysed (the caller's full graph: VAD, ASR, prosody and anger, NLU, the policy silent;
the agent's VAD, ASR and stress), the mixer, the call store, and the coach
(pipeline/coach.py) whispering prompts into the agent's ear. Per level, N such calls run
at once in this process, in real time, started ``--stagger`` seconds apart, on one
ModelBundle (the shared model workers), one event loop, as the server runs them.

Each call takes the call center's own path (switchboard/callcenter.py): ``run_call``
answers it (greeting, store record), the caller presses 0 a second in, the center hands
off (announcement, hold, rings an agent) and ``_bridge`` joins the agent's leg, wires the
routing and starts the coach. Both parties are recordings (telephony/file_edge.py
FileEdge) from ../shared/data, taking turns:

- the caller (call i: RAVDESS actor i % 16 + 1): ``--turns`` clips in the order of
  ``ORDER``: three neutral, then angry and request in turn. The neutral clips give the
  anger score its reference in the actor's own voice, the angry ones (strong first)
  should fire de-escalation prompts, the requests (Asterisk's 8 kHz telephone prompts the
  intent model maps to an ABCD flow, ``REQUESTS`` and ``OTHER_FLOW`` in turn) open a
  workflow and prompt its next step;
- the agent answers each caller turn ``AGENT_AFTER_S`` after the caller's speech ends
  with one of ``AGENT_LINES`` (Asterisk prompts in an agent's words), and the caller's
  next turn starts ``CALLER_AFTER_S`` after the agent's speech ends. The agent's plan is
  laid on the caller's timeline and cut where the agent picks up, so the turns alternate
  whenever the bridge happens.

Per level it reports every budgets.toml step's p50/p95 over all calls and both legs (the
calls' own StageMonitor samples, as scripts/bench_sip.py does), the coach's prompt
latency (the end of the triggering utterance -> the first prompt sample in the agent's
stream, as scripts/bench_coach.py measures it: from the release of the 20 ms frame that
holds the utterance's last speech sample, by frame energy, to the mixer tick that sends
the prompt's first frame), the model queues (wait and busy share per shared worker),
process CPU, event-loop lag, degrade moves, and whether the level *holds*: every step's
p50 within its budget, the prompt latency within p50 600 / p95 900 ms (budgets.toml
``coach_prompt``), no move down a degrade ladder, every call bridged without a handoff
failure or error. What saturates first is read from the first level that does not hold:
the steps over budget (worst first), and the signs per resource (``saturation``: ASR
jobs waiting longer than they run, the process near all cores, the loop late by more
than a frame).

``scripts/bench_assisted --levels 1,2,4,6`` (~6 minutes on a quiet machine, calls of ~72 s
each) is what docs/benchmarks.md reports; ``--markdown`` prints its tables.

Settings differ from the defaults only where a benchmark needs it (bench_sip's
``bench_settings`` plus the coach's pacing): the escalation rules off and no admission
limit; no gap between prompts and no rule cool-down, so every triggering utterance can
be a latency sample (a prompt still waits for the agent's pause). Everything is bounded
in count and time. Never fails on a threshold: it prints and writes JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import functools
import json
import os
import re
import shutil
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (puts the project on sys.path)
import numpy as np
from _common import ROOT, machine, run_benchmark, shared_data
from bench_coach import TimedEdge
from bench_sip import (
    Placed,
    TimedExecutor,
    bench_settings,
    code_state,
    events_of,
    queue_table,
    speech_bounds,
    stats,
    step_table,
)
from switchboard.telephony.audio_file import load
from switchboard.telephony.edge import FRAME_BYTES

RATE = 16000
FRAME = FRAME_BYTES // 2  # samples per 20 ms frame
LEAD_S = 6.5  # the greeting, the 0 pressed at PRESS_S, the announcement, the ring
PRESS_S = 1.0
ANSWER_S = 0.2  # the agent's phone answers this long after it rings
AGENT_AFTER_S = 1.5  # caller's speech end -> agent's speech onset
CALLER_AFTER_S = 1.0  # agent's speech end -> caller's next onset
TAIL_S = 3.0  # after the agent's last line: the last prompt plays, the caller hangs up
#: A prompt whose trigger lies this far before the clip's speech end came from a pause
#: inside the clip (the VAD ended a turn there): not timed from the clip's end.
SPLIT_S = 0.1

#: Caller requests: real 8 kHz telephone prompts whose words (as the ASR hears them) the
#: intent model maps to an ABCD flow with a positive margin (the coach opens a workflow
#: only then: coach.toml ``min_intent_confidence``), each a whole sentence: a fragment
#: ("the number I have is") gave a prompt ~1.3 s after its end, the others ~0.4 s, on one
#: call (the end-of-turn wait for more words, not the load). Requests alternate between
#: the two flows, so each one opens a workflow again and prompts its next step.
REQUESTS = (  # manage_change_phone
    "asr/asterisk_8k/enter_account.wav",
    "asr/asterisk_8k/number-not-answering.wav",
    "asr/asterisk_8k/check-number-dial-again.wav",
    "asr/asterisk_8k/pls-entr-num-uwish2-call.wav",
)
OTHER_FLOW = "asr/asterisk_8k/dir-nomatch.wav"  # search_results
#: The agent's side: Asterisk prompts worded as an agent would speak.
AGENT_LINES = (
    "asr/asterisk_8k/get_information_first.wav",
    "asr/asterisk_8k/no_problem_help.wav",
    "asr/asterisk_8k/conf-getpin.wav",
    "asr/asterisk_8k/transfer.wav",
    "asr/asterisk_8k/thnk-u-for-patience.wav",
    "asr/asterisk_8k/pls-wait-connect-call.wav",
    "asr/asterisk_8k/vm-msgsaved.wav",
    "asr/asterisk_8k/sorry_didnt_get.wav",
    "asr/asterisk_8k/pls-hold-while-try.wav",
    "asr/asterisk_8k/vm-dialout.wav",
)
#: The caller's turn kinds, repeated to ``--turns``.
ORDER = ("neutral", "neutral", "neutral", "angry", "request", "angry", "request", "angry",
         "request", "angry")
ACTORS = 16


# --- the parties' audio --------------------------------------------------------------------


@dataclass(frozen=True)
class Clip:
    """One recording at 16 kHz with its speech bounds (frame energy, bench_sip's)."""

    path: str
    kind: str
    audio: np.ndarray
    onset: int
    end: int  # one past the last speech sample


@functools.cache
def clip(data: Path, path: str, kind: str) -> Clip:
    audio = load(data / path).audio.astype(np.float32)
    pcm16 = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
    onset, end, _pause = speech_bounds(pcm16, RATE)
    return Clip(path, kind, audio, onset, end)


@dataclass
class Plan:
    """One call's two parties, on the caller's timeline."""

    index: int
    actor: str
    caller: list[Placed]
    agent: list[Placed]

    def audio(self, who: str) -> np.ndarray:
        """A party's audio; the caller's lasts until the agent's last line has ended (the
        caller hangs up TAIL_S after that)."""
        placed = self.caller if who == "caller" else self.agent
        n = max(p.start + len(p.clip.audio) for p in self.caller + self.agent)
        out = np.zeros(n, np.float32)
        for p in placed:
            out[p.start: p.start + len(p.clip.audio)] = p.clip.audio
        return out


def ravdess(data: Path, actor: str) -> dict[str, list[str]]:
    with open(data / "emotion" / "labels.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh)
                if r["dataset"] == "ravdess" and r["speaker"] == f"ravdess_{actor}"]
    # Strong clips first (the angry ones most likely to move the score); stable order.
    rows.sort(key=lambda r: r["intensity"] != "strong")
    by: dict[str, list[str]] = {}
    for r in rows:
        by.setdefault(r["emotion"], []).append(r["path"])
    return by


def make_plan(data: Path, index: int, turns: int) -> Plan:
    """Call ``index``'s turns: caller clip, the agent's answer, the caller's next, ..."""
    actor = f"{index % ACTORS + 1:02d}"
    own = ravdess(data, actor)
    used = {"neutral": 0, "angry": 0, "request": 0}
    caller: list[Placed] = []
    agent: list[Placed] = []
    onset_at = int(LEAD_S * RATE)  # where the next caller onset should fall
    free = 0  # the caller's audio is free from here (files never overlap)
    for t in range(turns):
        kind = ORDER[t % len(ORDER)]
        k = used[kind]
        used[kind] += 1
        if kind == "request":
            path = OTHER_FLOW if k % 2 else REQUESTS[(index + k // 2) % len(REQUESTS)]
        else:
            pool = own[kind] or own["neutral"]
            path = pool[k % len(pool)]
        c = clip(data, path, kind)
        start = max(free, onset_at - c.onset)
        caller.append(Placed(c, start))
        free = start + len(c.audio)
        a = clip(data, AGENT_LINES[(index * 5 + t) % len(AGENT_LINES)], "agent")
        a_start = max(agent[-1].start + len(agent[-1].clip.audio) if agent else 0,
                      caller[-1].end + int(AGENT_AFTER_S * RATE) - a.onset)
        agent.append(Placed(a, a_start))
        onset_at = agent[-1].end + int(CALLER_AFTER_S * RATE)
    return Plan(index, actor, caller, agent)


@dataclass
class Party:
    """A call's run: its plan, both edges, the prompts' first samples."""

    plan: Plan
    caller: TimedEdge
    call: Any = None
    agent: TimedEdge | None = None
    agent_placed: list[Placed] = field(default_factory=list)  # on the agent edge's audio
    bridged_after_s: float | None = None
    started: float = 0.0
    #: (first sample time, prompt id, trigger leg, trigger t_audio) per timed prompt.
    played: list[tuple[float, int, str, float]] = field(default_factory=list)


class BenchAgents:
    """The agents' phones (an AgentLine): answer after ANSWER_S with the call's agent
    recording, cut to where the caller's audio is now."""

    def __init__(self) -> None:
        self.parties: dict[str, Party] = {}

    async def ring(self, agent: str, context: dict):
        party = self.parties.get(context.get("call_id", ""))
        if party is None:
            return None
        await asyncio.sleep(ANSWER_S)
        offset = len(party.caller.released) * FRAME
        audio = party.plan.audio("agent")[offset:]
        party.agent_placed = [Placed(p.clip, p.start - offset) for p in party.plan.agent
                              if p.start >= offset]
        party.agent = TimedEdge.from_audio(audio, peer=f"file:{agent}", hang_up=False)
        party.bridged_after_s = time.monotonic() - party.started
        return party.agent


# --- the measurement -------------------------------------------------------------------------


def watch_prompts(party: Party) -> None:
    """Note each spoken prompt's first sample: CoachPromptPlayed is published in the very
    mixer tick that sends that sample (CallCoach._started), so its arrival is that time."""
    call = party.call

    def on_event(event) -> None:
        if event.kind != "coach_prompt_played" or event.latency_ms is None:
            return
        at = time.monotonic()
        coaching = call.coaching
        # The proposal behind it says which leg's utterance triggered it.
        proposal = getattr(coaching, "_live", {}).get(f"coach-{event.prompt_id}")
        leg = proposal.trigger_leg if proposal is not None else "caller"
        party.played.append((at, event.prompt_id, leg, event.t_audio))

    call.bus.subscribe(on_event)


def prompt_samples(party: Party) -> list[dict]:
    """Each timed prompt: from the release of the frame holding its triggering utterance's
    last speech sample to its first sample in the agent's stream."""
    rows = []
    call = party.call
    prompts = {e.prompt_id: e for e in events_of(call, "coach_prompt")}
    for at, pid, leg, t_audio in party.played:
        prompt = prompts.get(pid)
        row: dict[str, Any] = {"call": call.call_id, "prompt_id": pid, "leg": leg,
                               "rule": prompt.rule if prompt else "?",
                               "server_ms": None}
        played = next((e for e in events_of(call, "coach_prompt_played")
                       if e.prompt_id == pid), None)
        if played is not None and played.latency_ms is not None:
            row["server_ms"] = round(played.latency_ms, 1)
        edge, placed = ((party.caller, party.plan.caller) if leg == "caller"
                        else (party.agent, party.agent_placed))
        sample = round(t_audio * RATE)
        gap = int(max(AGENT_AFTER_S, CALLER_AFTER_S) * RATE)
        where = next((p for p in placed if p.start <= sample <= p.end + gap), None)
        if where is None or edge is None:
            rows.append(row | {"status": "no_clip"})
            continue
        if sample < where.end - SPLIT_S * RATE:
            rows.append(row | {"status": "split", "clip": where.clip.path})
            continue
        frame = (where.end - 1) // FRAME
        if frame >= len(edge.released):
            rows.append(row | {"status": "lost"})
            continue
        row |= {"status": "ok", "clip": where.clip.path, "kind": where.clip.kind,
                "latency_ms": round((at - edge.released[frame]) * 1000, 1)}
        rows.append(row)
    return rows


async def sample_loop_lag(out: list[float]) -> None:
    """How late a 20 ms sleep wakes: every call's mixer and pumps share this loop."""
    while True:
        t0 = time.monotonic()
        await asyncio.sleep(0.02)
        out.append((time.monotonic() - t0 - 0.02) * 1000)


@dataclass
class Bench:
    """The call center in this process and what is observed of it."""

    settings: Any
    bundle: Any
    center: Any
    agents: BenchAgents
    queue_log: list[tuple[str, float, float, float]]
    budgets: dict[str, Any]
    prompt_budget: tuple[float, float]


async def run_level(bench: Bench, data: Path, n: int, turns: int, stagger_s: float) -> dict:
    """N assisted calls at once; their figures."""
    plans = [make_plan(data, i, turns) for i in range(n)]
    parties = []
    load1 = os.getloadavg()[0]
    since = time.monotonic()
    cpu0, wall0 = os.times(), time.monotonic()
    lag: list[float] = []
    lagger = asyncio.ensure_future(sample_loop_lag(lag))
    loop = asyncio.get_running_loop()
    tasks = []
    try:
        for i, plan in enumerate(plans):
            if i:
                await asyncio.sleep(stagger_s)
            edge = TimedEdge.from_audio(plan.audio("caller"), peer=f"file:caller{i:02d}",
                                        tail_s=TAIL_S)
            party = Party(plan, edge, started=time.monotonic())
            party.call = bench.center.new_call("bench", call_id=f"n{n:02d}c{i:02d}")
            bench.agents.parties[party.call.call_id] = party
            watch_prompts(party)
            parties.append(party)
            tasks.append(asyncio.ensure_future(bench.center.run_call(party.call, edge)))
            loop.call_later(PRESS_S, edge.press, "0")
        longest = max(len(p.plan.audio("caller")) for p in parties) / RATE + TAIL_S
        done, pending = await asyncio.wait(tasks, timeout=longest + stagger_s * n + 60)
        for p in parties:  # bounded: a call still up after that is ended
            if p.call.end_reason is None and pending:
                p.call.end("bench_timeout")
        if pending:
            await asyncio.wait(pending, timeout=30)
    finally:
        lagger.cancel()
    cpu1, wall1 = os.times(), time.monotonic()
    calls = [p.call for p in parties]
    table = step_table(calls, bench.budgets)
    samples = [s for p in parties for s in prompt_samples(p)]
    ok = [s["latency_ms"] for s in samples if s["status"] == "ok"]
    p50_budget, p95_budget = bench.prompt_budget
    prompt = stats(ok, p50_budget) | {"p95_budget": p95_budget}
    statuses: dict[str, int] = {}
    for s in samples:
        statuses[s["status"]] = statuses.get(s["status"], 0) + 1
    decided = [e for c in calls for e in events_of(c, "coach_prompt")]
    by_rule: dict[str, dict[str, int]] = {}
    for e in decided:
        row = by_rule.setdefault(e.rule, {"decided": 0, "played": 0})
        row["decided"] += 1
        row["played"] += int(e.played)
    degraded, recovered = ladder_moves(calls)
    wall = wall1 - wall0
    cpu_s = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    queues = queue_table(bench.queue_log, since)
    workers = {"asr": bench.settings.asr.inter_threads}
    for name, q in queues.items():
        q["workers"] = workers.get(name, 1)
        q["busy_pct"] = round(100 * q["busy_s"] / wall, 1)
    finals = {leg: sum(1 for c in calls for e in events_of(c, "transcript_final")
                       if e.leg == leg and e.text) for leg in ("caller", "agent")}
    result = {
        "calls": n, "load1_at_start": load1, "wall_s": round(wall, 1),
        "process_cpu_pct": round(100 * cpu_s / wall, 1),
        "loop_lag_ms": stats(lag) | {"max": round(max(lag, default=0), 1)},
        "steps": table, "prompt_latency": prompt, "prompt_statuses": statuses,
        "prompt_latency_caller": stats([s["latency_ms"] for s in samples
                                        if s["status"] == "ok" and s["leg"] == "caller"]),
        "prompts_by_rule": by_rule,
        "workflows_opened": sum(len(events_of(c, "knowledge_card")) for c in calls),
        "caller_anger": {p.call.call_id: anger_trace(p) for p in parties},
        "queues": queues, "degraded": degraded, "recovered": recovered,
        "finals": finals,
        "bridged": sum(p.agent is not None for p in parties),
        "bridged_after_s": stats([p.bridged_after_s * 1000 for p in parties
                                  if p.bridged_after_s is not None]),
        "errors": [f"{c.call_id}: {c.error}" for c in calls if c.error],
        "end_reasons": sorted({str(c.end_reason) for c in calls}),
        # Any handoff step but ringing and answered, with its detail (a failure's cause).
        "handoff_trouble": [f"{c.call_id}: {e.status} {e.agent} {e.detail}".strip()
                            for c in calls for e in events_of(c, "handoff")
                            if e.status not in ("ringing", "answered")],
        "prompt_samples": samples,
    }
    result["over_budget"] = over_budget(result)
    result["holds"] = (not result["over_budget"] and not degraded and not result["errors"]
                       and not result["handoff_trouble"] and result["bridged"] == n
                       and prompt["n"] > 0)
    return result


def ladder_moves(calls: list[Any]) -> tuple[list[str], list[str]]:
    """Each stage's moves down its degrade ladder, and back up ("leg:stage->rung")."""
    down, up = [], []
    for call in calls:
        level: dict[tuple[str, str], int] = {}
        for e in events_of(call, "stage_degraded"):
            key = (e.leg, e.stage)
            (down if e.level > level.get(key, 0) else up).append(f"{e.leg}:{e.stage}->{e.rung}")
            level[key] = e.level
    return down, up


def anger_trace(party: Party) -> list[str]:
    """The caller's rolling anger after each turn ("kind rolling/confidence", "-" when
    the reference is not ready): why de-escalation fired, or did not."""
    out = []
    for e in events_of(party.call, "emotion"):
        if e.leg != "caller":
            continue
        sample = round(e.t_audio * RATE)
        where = next((p for p in party.plan.caller if p.start <= sample <= p.end + RATE), None)
        kind = where.clip.kind if where else "?"
        out.append(f"{kind} {e.rolling_anger:.1f}/{e.confidence:.2f}"
                   + ("" if e.baseline_ready else " -"))
    return out


def over_budget(row: dict) -> list[str]:
    """Steps whose p50 is over budget (the prompt latency: p50 or p95), worst first."""
    over = []
    for step, r in row["steps"].items():
        budget = r.get("budget")
        if budget and r["n"] and r["p50"] > budget:
            over.append((r["p50"] / budget, f"{step} p50 {r['p50']:g}/{budget:g}"))
    p = row["prompt_latency"]
    if p["n"]:
        if p["p50"] > p["budget"]:
            over.append((p["p50"] / p["budget"],
                         f"prompt latency p50 {p['p50']:.0f}/{p['budget']:.0f}"))
        if p["p95"] > p["p95_budget"]:
            over.append((p["p95"] / p["p95_budget"],
                         f"prompt latency p95 {p['p95']:.0f}/{p['p95_budget']:.0f}"))
    return [text for _, text in sorted(over, reverse=True)]


def saturation(row: dict) -> dict[str, Any]:
    """What is running out at this level: the ASR workers (queued longer than decoded),
    the CPU (process share of the cores), the event loop (late wake-ups)."""
    asr = row["queues"].get("asr", {})
    cores = os.cpu_count() or 1
    signs = {
        "asr_wait_p95_ms": asr.get("wait", {}).get("p95", 0.0),
        "asr_run_p95_ms": asr.get("run", {}).get("p95", 0.0),
        "asr_busy_share_pct": round(asr.get("busy_pct", 0.0) / max(1, asr.get("workers", 1)),
                                    1),
        "cpu_share_pct": round(row["process_cpu_pct"] / cores, 1),
        "loop_lag_p95_ms": row["loop_lag_ms"]["p95"],
    }
    first = []
    if signs["asr_wait_p95_ms"] > signs["asr_run_p95_ms"]:
        first.append("ASR workers (jobs wait longer than they run)")
    if signs["cpu_share_pct"] >= 90:
        first.append("CPU (process at >= 90% of all cores)")
    if signs["loop_lag_p95_ms"] > 20:
        first.append("event loop (p95 lag over one frame)")
    return signs | {"signs": first}


# --- output ------------------------------------------------------------------------------------


def cell(row: dict | None) -> str:
    return f"{row['p50']:.0f} / {row['p95']:.0f}" if row and row.get("n") else "—"


def print_table(result: dict) -> None:
    levels = result["levels"]
    print(f"\n{'calls':>5} {'prompt p50/p95':>15} {'asr_final p50/p95':>18} {'cpu%':>5} "
          f"{'asr wait p95':>12} {'lag p95/max':>12}  holds  over budget")
    for r in levels:
        q = r["queues"].get("asr", {})
        print(f"{r['calls']:5d} {cell(r['prompt_latency']):>15} "
              f"{cell(r['steps'].get('asr_final')):>18} {r['process_cpu_pct']:5.0f} "
              f"{q.get('wait', {}).get('p95', 0):12.0f} "
              f"{r['loop_lag_ms']['p95']:5.0f}/{r['loop_lag_ms']['max']:<6.0f}  "
              f"{'yes' if r['holds'] else 'no ':5}  {', '.join(r['over_budget'][:3]) or '-'}")
    steps = sorted({s for r in levels for s in r["steps"]})
    print(f"\n{'step p50/p95 ms by calls':26}" + "".join(f"{r['calls']:>13d}" for r in levels)
          + "   budget")
    for step in steps:
        budget = next((r["steps"][step].get("budget") for r in levels if step in r["steps"]),
                      None)
        cells = [cell(r["steps"].get(step)) if step in r["steps"] else "" for r in levels]
        print(f"{step:26}" + "".join(f"{c:>13}" for c in cells)
              + (f" {budget:8.0f}" if budget else ""))
    print(f"{'prompt latency (measured)':26}"
          + "".join(f"{cell(r['prompt_latency']):>13}" for r in levels) + "   600/900")
    line = f"\nheld with every budget met: {result['held']} calls"
    first = result.get("first_over")
    if first:
        degraded = ", ".join(sorted(set(first["degraded"]))) or "none"
        line += (f"; first level that does not hold: {first['calls']} calls — over: "
                 f"{', '.join(first['over_budget']) or 'none'}; degraded: {degraded}; "
                 f"errors: {len(first['errors'])}; saturation signs: "
                 f"{', '.join(first['saturation']['signs']) or 'none'}")
    print(line)


def markdown(result: dict) -> str:
    """The result as tables for docs/benchmarks.md (``--markdown out/bench_assisted.json``)."""
    out: list[str] = []
    m = result["machine"]
    code = result.get("code", {})
    out.append(f"Code: {code.get('commit', '?')}"
               + (f" plus uncommitted changes to {', '.join(code['changed'])}"
                  if code.get("changed") else "") + ".")
    out.append(f"Machine: {m['cores']} cores ({m['cpu']}), load average at start "
               f"{' / '.join(f'{x:.2f}' for x in m['loadavg_at_start'])}, at end "
               f"{' / '.join(f'{x:.2f}' for x in m.get('loadavg_at_end', []))}; "
               f"{m['started']}. {result['turns']} caller turns per call, calls "
               f"{result['stagger_s']} s apart.\n")
    levels = result["levels"]
    out.append("| calls | prompt latency p50 / p95 | asr_final p50 / p95 | asr queue wait p95 "
               "| asr busy | process CPU | loop lag p95 / max | finals caller / agent "
               "| prompts played | load | holds |")
    out.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in levels:
        q = r["queues"].get("asr", {})
        played = sum(v["played"] for v in r["prompts_by_rule"].values())
        out.append(
            f"| {r['calls']} | {cell(r['prompt_latency'])} | {cell(r['steps'].get('asr_final'))}"
            f" | {q.get('wait', {}).get('p95', 0):.0f} ms | {q.get('busy_pct', 0):.0f}% of "
            f"{q.get('workers', 1)} | {r['process_cpu_pct']:.0f}% | {r['loop_lag_ms']['p95']:.0f}"
            f" / {r['loop_lag_ms']['max']:.0f} ms | {r['finals']['caller']} / "
            f"{r['finals']['agent']} | {played} | {r['load1_at_start']:.2f} | "
            f"{'yes' if r['holds'] else 'no'} |")
    steps = sorted({s for r in levels for s in r["steps"]})
    out.append("\n| step (calls' own samples, both legs), p50 / p95 ms | "
               + " | ".join(f"{r['calls']} calls" for r in levels) + " | budget |")
    out.append("|---|" + "---:|" * (len(levels) + 1))
    for step in steps:
        budget = next((r["steps"][step].get("budget") for r in levels if step in r["steps"]),
                      None)
        out.append(f"| {step} | " + " | ".join(cell(r["steps"].get(step)) for r in levels)
                   + f" | {f'{budget:g}' if budget else ''} |")
    out.append("| **prompt latency** (speech end → first prompt sample, measured) | "
               + " | ".join(cell(r["prompt_latency"]) for r in levels) + " | 600 / 900 |")
    out.append("\nOver budget per level: " + "; ".join(
        f"{r['calls']}: {', '.join(r['over_budget']) or '—'}" for r in levels))
    out.append("\nDegraded per level: " + "; ".join(
        f"{r['calls']}: {', '.join(sorted(set(r['degraded']))) or '—'}" for r in levels))
    out.append("\nSaturation signs per level: " + "; ".join(
        f"{r['calls']}: {', '.join(r['saturation']['signs']) or '—'}" for r in levels))
    out.append(f"\nAssisted calls held with every budget met: **{result['held']}**.")
    return "\n".join(out)


# --- main --------------------------------------------------------------------------------------


def coach_rules_without_cooldown(workdir: Path) -> Path:
    """The bundled coach rules with every cool-down at 0 (a benchmark's sampling, not a
    site's pacing): the call center loads them through ``coach.rules``."""
    from switchboard.pipeline.coach_rules import load_rules

    text = Path(load_rules(None).source).read_text()
    path = workdir / "coach.toml"
    path.write_text(re.sub(r"(?m)^cooldown_s\s*=.*$", "cooldown_s = 0.0", text))
    return path


async def amain(args: argparse.Namespace) -> dict:
    from switchboard.models.bundle import ModelBundle
    from switchboard.pipeline.budgets import Metrics
    from switchboard.pipeline.coach_rules import load_rules
    from switchboard.pipeline.store import CallStore

    from switchboard.callcenter import AgentDirectory, CallCenter

    data = shared_data()
    levels = [int(x) for x in args.levels.split(",") if x]
    workdir = Path(tempfile.mkdtemp(prefix="bench_assisted-"))
    settings = bench_settings(workdir)
    settings.nlu.kb_dir = str(data / "kb" / "abcd")
    settings.coach.enabled = True
    settings.coach.min_gap_s = 0.0
    settings.coach.rules = str(coach_rules_without_cooldown(workdir))
    raw = tomllib.loads((ROOT / "budgets.toml").read_text())["budgets"].get("coach_prompt", {})
    prompt_budget = (float(raw.get("budget_ms", 600.0)), float(raw.get("p95_ms", 900.0)))
    bundle = ModelBundle(settings)
    print("warming up the models...", flush=True)
    bundle.warm_up()
    queue_log: list[tuple[str, float, float, float]] = []
    orig_executor = bundle.executor
    # Observe the shared model queues (wait vs run), as bench_sip does.
    bundle.executor = lambda model: TimedExecutor(orig_executor(model), model, queue_log)
    store = CallStore.from_options(settings.store, settings.privacy)
    agents = BenchAgents()
    directory = AgentDirectory(agents, [f"agent{i:02d}" for i in range(max(levels))])
    center = CallCenter(settings, bundle, store=store, metrics=Metrics(), agents=directory)
    await center.prewarm()
    # The prompts' audio, as a running server has it cached after its first calls.
    rules = load_rules(settings.coach.rules, settings.coach.max_words)
    texts = {r.spoken for r in rules.rules.values() if "{" not in r.spoken}
    texts |= {r.spoken.replace("{step}", s.spoken) for r in rules.rules.values()
              if "{step}" in r.spoken for s in rules.steps.values()}
    for text in sorted(texts):
        await center.phrase(text)
    bench = Bench(settings, bundle, center, agents, queue_log, settings.budgets.budgets,
                  prompt_budget)
    result: dict[str, Any] = {
        "benchmark": "bench_assisted",
        "machine": machine() | {"loadavg_at_start": list(os.getloadavg()),
                                "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
        "code": code_state(), "turns": args.turns, "stagger_s": args.stagger,
        "method": {"lead_s": LEAD_S, "press_s": PRESS_S, "answer_s": ANSWER_S,
                   "agent_after_s": AGENT_AFTER_S, "caller_after_s": CALLER_AFTER_S,
                   "order": list(ORDER), "requests": [*REQUESTS, OTHER_FLOW],
                   "agent_lines": list(AGENT_LINES),
                   "coach": {"min_gap_s": 0.0, "cooldown_s": 0.0},
                   "asr_workers": settings.asr.inter_threads},
        "levels": [],
    }
    length = len(make_plan(data, 0, args.turns).audio("caller")) / RATE + TAIL_S
    total = sum(length + args.stagger * (n - 1) + 5 for n in levels)
    print(f"{len(levels)} levels, about {total / 60:.1f} min of calls", flush=True)
    try:
        for n in levels:
            print(f"level {n}: {n} assisted calls of ~{length:.0f} s, {args.stagger} s apart",
                  flush=True)
            row = await run_level(bench, data, n, args.turns, args.stagger)
            row["saturation"] = saturation(row)
            result["levels"].append(row)
            asr = row["steps"].get("asr_final", {})
            print(f"  N={n}: prompt p50/p95 {cell(row['prompt_latency'])} ms "
                  f"(n={row['prompt_latency']['n']}), asr_final {cell(asr)}, cpu "
                  f"{row['process_cpu_pct']:.0f}%, asr wait p95 "
                  f"{row['queues'].get('asr', {}).get('wait', {}).get('p95', 0):.0f} ms, "
                  f"loop lag p95 {row['loop_lag_ms']['p95']:.0f} ms, bridged "
                  f"{row['bridged']}/{n}, over: {', '.join(row['over_budget']) or '-'}; "
                  f"degraded: {sorted(set(row['degraded'])) or '-'}; "
                  f"{'holds' if row['holds'] else 'does not hold'}", flush=True)
    finally:
        await center.shutdown()
        store.close()
        shutil.rmtree(workdir, ignore_errors=True)
    held = [r["calls"] for r in result["levels"] if r["holds"]]
    result["held"] = max(held) if held else 0
    first = next((r for r in result["levels"] if not r["holds"]), None)
    result["first_over"] = ({k: first[k] for k in ("calls", "over_budget", "degraded",
                                                    "saturation", "errors")}
                            if first else None)
    result["machine"]["loadavg_at_end"] = list(os.getloadavg())
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--levels", default="1,2,4,6,8", help="concurrent calls per level")
    ap.add_argument("--turns", type=int, default=10, help="caller turns per call (each "
                    "answered by the agent)")
    ap.add_argument("--stagger", type=float, default=0.7, help="seconds between call starts")
    ap.add_argument("--json", default=str(ROOT / "out" / "bench_assisted.json"))
    ap.add_argument("--markdown", default="", help="print a result JSON as markdown; no run")
    args = ap.parse_args()
    if args.markdown:
        print(markdown(json.loads(Path(args.markdown).read_text())))
        return
    if args.turns < 1 or not [x for x in args.levels.split(",") if x]:
        ap.error("--turns must be at least 1 and --levels name one level at least")
    run_benchmark(amain, args, print_table)


if __name__ == "__main__":
    main()
