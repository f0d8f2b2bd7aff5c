"""Voice-to-voice through the WebRTC and media-stream edges beside SIP, on the same clips.

    scripts/bench_edges [--edges sip,webrtc,media_stream] [--clips N] [--fixed-jitter N]
                        [--prepare-ab] [--json out/bench_edges.json]

Starts the whole server in-process through scripts/bench_sip's ``Bench`` (so the SIP turn
is bench_sip's own: sipp, timed on the wire by tcpdump) and, for each clip in turn, calls
it once over each edge, one call at a time: the three edges of a clip run back to back,
so they share the machine's load of the moment (this machine is shared). The caller
audio is the one scripts/bench_sip builds (the same 16 recordings as 8 kHz μ-law: silence
while the bot greets, the clip, silence for the reply), with its settings (escalation
off). WebRTC and media streams are timed AT THE CALLER, as a caller would hear it:

- *webrtc*: an aiortc peer (tests/webrtc_client.py) sends the audio (μ-law decoded and
  upsampled to 16 kHz, encoded as Opus by aiortc). The caller's last speech sample is the
  moment its 20 ms frame went to aiortc's encoder; the reply is the first frame the peer
  decodes (after aiortc's jitter buffer) whose peak is above ``AUDIBLE`` (-54 dBFS).
- *media_stream*: a WebSocket client plays Twilio: 20 ms base64 μ-law media messages at
  real time; from the send of the message holding the last speech sample to the receipt
  of the first audible media message.

The speech end of each clip is bench_sip's (energy endpoint on the μ-law audio sent). A
turn with the bot audible in the 600 ms before the speech end is not timed (``overlap``).
``--fixed-jitter N`` holds the SIP jitter buffer at N packets instead of letting its depth
follow the stream (telephony/sip/jitterbuffer.py): 3 is the depth before it adapted.
``--prepare-ab`` adds an edge ``sip_unprepared``: each clip's SIP call again, right after,
with ``nlu.prepare_at_pause`` off (the final's words embedded after the turn ends), so the
two share the moment's load. Never fails on a threshold: it prints and writes JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (puts the project on sys.path)
import aiohttp
import numpy as np
from _common import ROOT, machine, p50_p95, shared_data, write_json
from bench_sip import (
    CHUNK,
    CLIPS,
    RATE,
    Bench,
    _turns_of,
    bench_settings,
    load_clip,
    make_caller,
)
from switchboard.telephony import g711
from switchboard.telephony.resample import resample

#: A 16 kHz sample this loud is audible: bench_sip's 64 on μ-law's 8 kHz scale.
AUDIBLE = 64
OVERLAP_S = 0.6


def turn(clip_path: str, t_end: float | None, heard: list[tuple[float, int]]) -> dict:
    """Voice-to-voice of one turn: ``heard`` is (arrival time, peak) of the bot's audio."""
    if t_end is None:
        return {"clip": clip_path, "status": "no_send_time"}
    if any(t_end - OVERLAP_S <= t <= t_end and peak > AUDIBLE for t, peak in heard):
        return {"clip": clip_path, "status": "overlap"}
    after = [t for t, peak in heard if t > t_end and peak > AUDIBLE]
    if not after:
        return {"clip": clip_path, "status": "no_reply"}
    return {"clip": clip_path, "status": "ok", "v2v_ms": round((after[0] - t_end) * 1000, 1)}


async def webrtc_turn(url: str, caller) -> dict:
    from tests.webrtc_client import RecordingTrack, call_bot

    pcm8 = g711.ulaw_decode(caller.ulaw).astype(np.float32) / 32768
    pcm16 = (np.clip(resample(pcm8, RATE, 16000), -1, 1) * 32767).astype(np.int16)
    track = RecordingTrack(pcm16)
    result = await call_bot(url, pcm16, listen_s=0.5, track=track)
    placed = caller.placed[0]
    frame = (2 * placed.end - 1) // 320  # the 16 kHz frame holding the last speech sample
    t_end = track.sent_at[frame] if frame < len(track.sent_at) else None
    return turn(placed.clip.path, t_end, result.frames) | {"call_id": result.call_id}


async def media_stream_turn(url: str, caller) -> dict:
    from tests.test_media_stream import STREAM_SID, media, messages

    heard: list[tuple[float, int]] = []
    sent_at: list[float] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        connected, start = messages()
        await ws.send_str(json.dumps(connected))
        await ws.send_str(json.dumps(start))

        async def listen() -> None:
            async for msg in ws:
                now = time.monotonic()
                body = json.loads(msg.data)
                if body.get("event") == "media":
                    ulaw = base64.b64decode(body["media"]["payload"])
                    heard.append((now, int(np.abs(g711.ulaw_decode(ulaw).astype(np.int32))
                                           .max(initial=0))))

        reader = asyncio.ensure_future(listen())
        t0 = time.monotonic()
        chunks = len(caller.ulaw) // CHUNK
        for i in range(chunks):
            sent_at.append(time.monotonic())
            await ws.send_str(json.dumps(media(i + 2, i + 1,
                                               caller.ulaw[i * CHUNK:(i + 1) * CHUNK])))
            delay = t0 + (i + 1) * 0.02 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        await ws.send_str(json.dumps({"event": "stop", "streamSid": STREAM_SID,
                                      "sequenceNumber": str(chunks + 2), "stop": {}}))
        try:
            await asyncio.wait_for(reader, 10)
        except TimeoutError:
            reader.cancel()
    placed = caller.placed[0]
    index = (placed.end - 1) // CHUNK
    return turn(placed.clip.path, sent_at[index] if index < len(sent_at) else None, heard)


def stats(values: list[float]) -> dict[str, Any]:
    p50, p95 = p50_p95(values)
    return {"n": len(values), "p50": round(p50, 1), "p95": round(p95, 1)}


async def amain(args: argparse.Namespace) -> dict:
    from switchboard.models.bundle import ModelBundle

    data = shared_data()
    refs = {r["path"]: r["text"] for r in _common.asr_refs(data)}
    clips = [load_clip(data, p, refs[p]) for p in CLIPS]
    if args.clips:
        half = len(clips) // 2
        mixed = [c for pair in zip(clips[:half], clips[half:], strict=True) for c in pair]
        clips = mixed[: args.clips]
    workdir = Path(tempfile.mkdtemp(prefix="bench_edges-"))
    settings = bench_settings(workdir)
    settings.nlu.kb_dir = str(data / "kb" / "abcd")
    if args.fixed_jitter:
        sip = settings.sip
        sip.jitter_prefetch_frames = sip.jitter_min_frames = sip.jitter_max_frames = \
            args.fixed_jitter
    bundle = ModelBundle(settings)
    bundle.warm_up()
    result: dict[str, Any] = {
        "machine": machine() | {"loadavg_at_start": list(os.getloadavg())},
        "clips": [c.path for c in clips],
        "method": {"audible_peak_16bit": AUDIBLE, "timed_at": "the caller",
                   "sip_jitter": f"fixed {args.fixed_jitter}" if args.fixed_jitter
                   else "adaptive"},
    }
    edges = args.edges.split(",")
    if args.prepare_ab:
        edges.insert(edges.index("sip") + 1, "sip_unprepared")
    turns: dict[str, list[dict]] = {edge: [] for edge in edges}
    bench = Bench(settings, bundle, workdir)
    await bench.start()
    running = bench.running
    try:
        for i, clip in enumerate(clips):
            for edge in edges:
                caller = make_caller(f"{edge}{i:02d}", [(clip, False)])
                if edge.startswith("sip"):
                    # Read by each call's NLU stage as it is built.
                    settings.nlu.prepare_at_pause = edge == "sip"
                    t = _turns_of(caller, await bench.run([caller], 0.0, caller.name))[0]
                    t = {"clip": clip.path, "status": t["status"],
                         "v2v_ms": t.get("v2v_ms"), "server_v2v_ms": t.get("server_v2v_ms")}
                else:
                    if edge == "webrtc":
                        t = await webrtc_turn(running.http_url, caller)
                    else:
                        t = await media_stream_turn(running.media_stream_url, caller)
                    await asyncio.sleep(0.3)
                    running.store.flush()
                    last = running.store.list_calls(limit=1)[0]["call_id"]
                    server = [e["latency_ms"] for e in running.store.events(
                        last, kinds=["reply_audio"])]
                    # Announcements are not graph replies: the first is the clip's.
                    t["server_v2v_ms"] = round(server[0], 1) if server else None
                turns[edge].append(t)
                print(f"  {edge:12s} {clip.path}: {t['status']} "
                      f"{t.get('v2v_ms') or float('nan'):.0f} ms "
                      f"(server {t.get('server_v2v_ms')})", flush=True)
                await asyncio.sleep(0.5)
    finally:
        await bench.stop()
    for edge in edges:
        ok = [t["v2v_ms"] for t in turns[edge] if t["status"] == "ok"]
        server_ms = [t["server_v2v_ms"] for t in turns[edge]
                     if t["status"] == "ok" and t.get("server_v2v_ms") is not None]
        result[edge] = {"v2v": stats(ok), "server_v2v": stats(server_ms),
                        "turns": turns[edge],
                        "statuses": {s: sum(t["status"] == s for t in turns[edge])
                                     for s in {t["status"] for t in turns[edge]}}}
        print(f"{edge}: voice-to-voice p50 {result[edge]['v2v']['p50']} ms, "
              f"p95 {result[edge]['v2v']['p95']} ms (n={len(ok)}); server's own p50 "
              f"{result[edge]['server_v2v']['p50']} ms", flush=True)
    result["machine"]["loadavg_at_end"] = list(os.getloadavg())
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--edges", default="sip,webrtc,media_stream")
    ap.add_argument("--clips", type=int, default=0, help="first N clips (0: all 16)")
    ap.add_argument("--fixed-jitter", type=int, default=0, metavar="N",
                    help="hold the SIP jitter buffer at N packets (0: adaptive)")
    ap.add_argument("--prepare-ab", action="store_true",
                    help="each SIP call again with nlu.prepare_at_pause off")
    ap.add_argument("--json", default=str(ROOT / "out" / "bench_edges.json"))
    args = ap.parse_args()
    if args.prepare_ab and "sip" not in args.edges.split(","):
        ap.error("--prepare-ab goes with the sip edge")
    from loguru import logger

    logger.remove()  # pipecat's debug lines would bury the table
    result = asyncio.run(amain(args))
    write_json(args.json, result)


if __name__ == "__main__":
    main()
