"""The ``switchboard`` command line.

    switchboard simulate CALL [--realtime | --fast] [--json OUT] [--wav OUT]
                              [--leg caller|agent | --channels caller,agent]
    switchboard demo
    switchboard talk [--device NAME] [--seconds N]
    switchboard models

Exit codes: 0 done, 2 unusable input file, 3 a model missing or corrupt (one line each),
130 interrupted (Ctrl-C: the call stops at once and is recorded as interrupted).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import signal
import sys
import uuid
from pathlib import Path

from switchboard.config import ROOT, load_settings


def _quiet_libraries() -> None:
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


def _jsonable(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def _load_models(settings):
    """A warmed-up ModelBundle, or None after printing the one-line error (exit code 3)."""
    from switchboard.models.bundle import ModelBundle
    from switchboard.models.registry import ModelUnavailableError

    bundle = ModelBundle(settings)
    try:
        bundle.warm_up()
    except ModelUnavailableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    return bundle


#: Exit status after Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130


def _run_interruptible(coro, reason: str):
    """``asyncio.run(coro)``, with Ctrl-C cancelling it with ``reason`` (so it stops and
    records why) instead of being ignored; a cancellation propagates as CancelledError."""

    async def main():
        task = asyncio.ensure_future(coro)
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGINT, task.cancel, reason)
        except (RuntimeError, ValueError):  # not the main thread: no signals to handle
            return await task
        try:
            return await task
        finally:
            loop.remove_signal_handler(signal.SIGINT)

    return asyncio.run(main())


def cmd_simulate(args: argparse.Namespace, bundle=None) -> int:
    """Play one recording through the graph; ``bundle`` reuses already-loaded models."""
    from switchboard.pipeline.store import CallStore
    from switchboard.session import CallEnd, load_channels, run_call, run_legs
    from switchboard.telephony.audio_file import AudioFileError, load
    from switchboard.timeline import OrderedTimelinePrinter, TimelinePrinter, latency_lines

    legs = _channel_legs(getattr(args, "channels", None))
    if legs is None:
        return 2
    try:
        recording = load(args.call)
        # A two-party recording: one leg per channel, each analysed as its own leg.
        split = load_channels(args.call, legs) if legs else None
    except AudioFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    settings = bundle.settings if bundle else load_settings(args.config)
    if args.no_store:
        settings.store.url = "sqlite:///:memory:"
    if bundle is None:
        bundle = _load_models(settings)
        if bundle is None:
            return 3
    mode = "real time" if args.realtime else "fast"
    print(f"call: {recording.path} ({recording.duration_s:.1f} s, {recording.source_format}, "
          f"{recording.source_rate} Hz, {recording.source_channels} ch) in {mode}")
    if split:
        parties = ", ".join(f"channel {i + 1} = {leg}" for i, leg in enumerate(legs))
        print(f"two parties: {parties}; the bot does not answer (a person is on the call)")
        ordered = OrderedTimelinePrinter(legs)
        printer = [] if args.quiet else [ordered]
    else:
        ordered = None
        printer = [] if args.quiet else [TimelinePrinter()]
    store = CallStore(settings.store.url)
    call_id = getattr(args, "call_id", None) or uuid.uuid4().hex[:12]
    if split:
        run = run_legs(split, settings, bundle, realtime=args.realtime, subscribers=printer,
                       store=store, call_id=call_id)
    else:
        run = run_call(recording, settings, bundle, realtime=args.realtime,
                       subscribers=printer, store=store, leg=args.leg, call_id=call_id)
    try:
        result = _run_interruptible(run, CallEnd.INTERRUPTED)
    except asyncio.CancelledError:
        print(f"\ninterrupted: call {call_id} stopped and recorded as interrupted",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        store.close()
        if ordered is not None and not args.quiet:
            ordered.flush()
    print()
    print("\n".join(latency_lines(result.latency, realtime=args.realtime)))
    if args.wav:
        import soundfile as sf

        sf.write(args.wav, result.stereo, 16000)
        what = "caller, right: agent" if split else "caller, right: bot replies"
        print(f"\nwrote {args.wav} (left: {what})")
    if args.metrics:
        Path(args.metrics).write_text(result.context.metrics.exposition())
        print(f"wrote {args.metrics} (Prometheus text format)")
    if args.json:
        payload = result.summary() | {"events": [e.to_dict() for e in result.events],
                                      "mode": mode}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(_jsonable(payload), indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


def _channel_legs(channels: str | None) -> list[str] | None:
    """``--channels caller,agent`` as a list of legs; [] when not given; None (after
    printing why) when it names an unknown or repeated leg."""
    if not channels:
        return []
    legs = [c.strip() for c in channels.split(",") if c.strip()]
    if not legs or len(set(legs)) != len(legs) or set(legs) - {"caller", "agent"}:
        print(f"error: --channels takes distinct legs among caller, agent (as "
              f"'caller,agent'), not {channels!r}", file=sys.stderr)
        return None
    return legs


DEMO_CALLER_LINES = (
    "Hi, I forgot my password and I can't log in to my account.",
    "Also, the promo code from your email is not working.",
)


def cmd_demo(args: argparse.Namespace) -> int:
    """A customer-service caller (synthesised), then real recordings, in real time."""
    data = Path(args.data)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    calls = [_synthesised_caller(out / "caller.wav")]
    calls += [c for c in (data / "asr" / "asterisk_8k" / "1-for-am-2-for-pm.wav",
                          data / "asr" / "whisper" / "jfk_16k.wav") if c.is_file()]
    if len(calls) == 1:
        print(f"note: {data} not found; playing the synthesised caller only")
    bundle = _load_models(load_settings(args.config))
    if bundle is None:
        return 3
    status = 0
    for i, call in enumerate(calls, 1):
        ns = argparse.Namespace(call=str(call), realtime=True, json=str(out / f"call{i}.json"),
                                wav=str(out / f"call{i}.wav"),
                                metrics=str(out / f"call{i}.prom"), config=args.config,
                                quiet=False, no_store=False, leg="caller")
        print(f"\n=== demo call {i} of {len(calls)}: {call.name} ===")
        code = cmd_simulate(ns, bundle)
        if code == EXIT_INTERRUPTED:
            return code
        status = max(status, code)
    return status


def _synthesised_caller(path: Path) -> Path:
    """A short call-center caller spoken by Piper, with a pause between turns."""
    import numpy as np
    import soundfile as sf

    from switchboard.models.tts import PiperTTS

    tts = PiperTTS(length_scale=1.1, noise=False)
    gap = np.zeros(int(1.2 * 16000), np.float32)
    parts = [gap]
    for line in DEMO_CALLER_LINES:
        parts += [0.6 * tts.synthesize(line), gap, gap]
    sf.write(str(path), np.concatenate(parts), 16000)
    return path


def cmd_models(args: argparse.Namespace) -> int:
    """Check every bundled model loads; prepare derived files (the joined Whisper base, the
    MiniLM onnx graph)."""
    from switchboard.models.emotion import DEFAULT_WEIGHTS, EmotionModel
    from switchboard.models.minilm_onnx import cached_model
    from switchboard.models.registry import (
        MINILM,
        PIPER_JOE,
        SILERO_VAD,
        ModelUnavailableError,
        locate,
        whisper_dir,
    )

    ok = True
    checks = [("whisper tiny.en", lambda: whisper_dir("tiny.en")),
              ("whisper base", lambda: whisper_dir("base")),
              ("silero vad", lambda: locate(SILERO_VAD)),
              ("piper joe", lambda: locate(PIPER_JOE)),
              ("minilm", lambda: locate(MINILM)),
              ("minilm onnx", lambda: cached_model(locate(MINILM))),
              ("anger/stress", lambda: EmotionModel.load() and DEFAULT_WEIGHTS)]
    for name, check in checks:
        try:
            print(f"ok    {name:16} {check()}")
        except (ModelUnavailableError, OSError, ImportError) as exc:
            ok = False
            print(f"FAIL  {name:16} {exc}")
    return 0 if ok else 3


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the call center until Ctrl-C or SIGTERM."""
    from switchboard.serve import banner, serve

    settings = load_settings(args.config)
    if args.sip_port is not None:
        settings.sip.port = args.sip_port
    if args.http_port is not None:
        settings.server.http_port = args.http_port
    if args.host is not None:
        settings.sip.host = settings.server.http_host = args.host
    bundle = _load_models(settings)
    if bundle is None:
        return 3
    return asyncio.run(serve(settings, bundle, on_ready=lambda r: print(banner(r),
                                                                         flush=True)))


def cmd_talk(args: argparse.Namespace) -> int:
    """A call with the bot from this computer's microphone and speakers."""
    from switchboard.pipeline.store import CallStore
    from switchboard.talk import talk
    from switchboard.telephony.sound_device import NoSoundDevice, find_devices

    try:
        devices = find_devices(args.device)  # before the models: a missing device is quick
    except NoSoundDevice as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    settings = load_settings(args.config)
    bundle = _load_models(settings)
    if bundle is None:
        return 3
    store = None if args.no_store else CallStore.from_options(settings.store)
    try:
        reason = asyncio.run(talk(settings, bundle, devices, seconds=args.seconds,
                                  say=lambda line: print(line, flush=True), store=store))
    except NoSoundDevice as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if store is not None:
            store.close()
    print(f"call ended ({reason})")
    return 0


def cmd_users(args: argparse.Namespace) -> int:
    """Add, list or remove agents and supervisors."""
    from switchboard.users import UserError, UserStore

    settings = load_settings(args.config)
    store = UserStore(settings.store.url, realm=settings.sip.realm)
    try:
        if args.action == "add":
            password = sys.stdin.readline().strip() if args.password_stdin else None
            password = store.add(args.name, args.role, password)
            if not args.password_stdin:
                print(f"{args.role} {args.name} created; password (shown once): {password}")
            else:
                print(f"{args.role} {args.name} created")
        elif args.action == "remove":
            if not store.remove(args.name):
                print(f"error: no user {args.name!r}", file=sys.stderr)
                return 2
        else:
            for user in store.list():
                print(f"{user.name:24} {user.role}")
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="switchboard", description="Switchboard call pipeline")
    ap.add_argument("--config", default=None, help="TOML file overriding the defaults")
    sub = ap.add_subparsers(dest="command", required=True)

    sim = sub.add_parser("simulate", help="play a recording through the analysis graph")
    sim.add_argument("call", help="audio file (any rate/channels; WAV, FLAC, μ-law...)")
    pace = sim.add_mutually_exclusive_group()
    pace.add_argument("--realtime", dest="realtime", action="store_true", default=True,
                      help="pace audio at real time (default; true latencies)")
    pace.add_argument("--fast", dest="realtime", action="store_false",
                      help="as fast as possible (latencies = processing time)")
    sim.add_argument("--json", help="write the events and latency table as JSON")
    sim.add_argument("--wav", help="write caller (left) and bot replies (right) as a wav")
    sim.add_argument("--metrics", help="write Prometheus metrics (text format)")
    sim.add_argument("--quiet", action="store_true", help="latency table only")
    sim.add_argument("--no-store", action="store_true", help="do not record the call")
    sim.add_argument("--leg", choices=["caller", "agent"], default="caller",
                     help="whose voice the recording is (agent: stress, no bot replies)")
    sim.add_argument("--channels", metavar="LEGS",
                     help="a two-party recording: whose voice each channel is, in order "
                          "(caller,agent): each channel is analysed as its own leg")
    sim.add_argument("--call-id", help="the call's id in the store (default: random)")
    sim.set_defaults(func=cmd_simulate)

    demo = sub.add_parser("demo", help="live demo on real recordings")
    demo.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    demo.add_argument("--out", default=str(ROOT / "out" / "demo"))
    demo.set_defaults(func=cmd_demo)

    srv = sub.add_parser("serve", help="answer calls: SIP endpoint, HTTP API, metrics")
    srv.add_argument("--sip-port", type=int, default=None, help="SIP port (default 5060)")
    srv.add_argument("--http-port", type=int, default=None, help="HTTP port (default 8080)")
    srv.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1)")
    srv.set_defaults(func=cmd_serve)

    desk = sub.add_parser("talk", help="talk to the bot from this computer's microphone")
    desk.add_argument("--device", default=None,
                      help="use the sound device whose name contains this (default: the "
                           "system's default microphone and speakers)")
    desk.add_argument("--seconds", type=float, default=None, help="hang up after this long")
    desk.add_argument("--no-store", action="store_true", help="do not record the call")
    desk.set_defaults(func=cmd_talk)

    users = sub.add_parser("users", help="manage agents and supervisors")
    users.add_argument("action", choices=["add", "list", "remove"])
    users.add_argument("name", nargs="?", default="")
    users.add_argument("--role", choices=["agent", "supervisor"], default="agent")
    users.add_argument("--password-stdin", action="store_true",
                       help="read the password from standard input (else a random one)")
    users.set_defaults(func=cmd_users)

    models = sub.add_parser("models", help="check the bundled models")
    models.set_defaults(func=cmd_models)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _quiet_libraries()
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
