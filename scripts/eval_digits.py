"""Spoken numbers over the phone: does the ASR hear the digits a caller reads out?

    scripts/eval_digits [--per-slot N] [--renderings N] [--seed N] [--prompt TEXT]
                        [--json out.json]

Callers read out phone numbers, zip codes, order IDs and PINs, one digit at a time, and
Whisper (tiny.en) writes digit strings in many ways ("555-0100202", "55001020 to 02"),
some of them wrong. Each number is said as a caller answers a question ("It is ...",
"My zip code is ...", the digits alone; "oh" for some zeros), spoken by the bundled Piper
voice at two speeds with its sampled variation on (``--renderings`` renderings of each),
sent through an 8 kHz μ-law phone leg, and transcribed plainly and as the ASR stage does
while the bot waits for a number (``decode_for``: ``asr.digit_prompt`` as Whisper's
previous text, and a plain decode again when no digit comes out). Scored as the dialogue
reads it: ``spoken.normalise`` of the transcript must give the number said. A control set
of answers without a number (yes, no, a name, "I don't have it") is transcribed both ways
too, to show what the prompt does to them.

The numbers come from a seeded generator, not from the lines the prompt was tried on
(``tests/test_conversation.py``'s phone number and zip code). One synthetic voice: the
data has no recording of a real caller reading a number, so what this measures is how the
transcript is written, not how a real caller's digits are heard.
"""

from __future__ import annotations

import argparse
import random
import re
import time

import _common  # noqa: F401  (puts the project on sys.path)
import numpy as np
from _common import machine, write_json
from switchboard.models.bundle import ModelBundle
from switchboard.models.tts import PiperTTS
from switchboard.pipeline.spoken import DIGIT_COUNTS, normalise, say_digits
from switchboard.pipeline.stages.asr import decode_for
from train_emotion import telephone

from switchboard.config import load_settings

SEED = 20261130
PIN_DIGITS = 4  # PINs vary in length (spoken.DIGIT_COUNTS has none): the common one
SPEEDS = (1.0, 1.2)  # Piper length_scale: the bot's pace, and a slower caller
# What a caller says around the number, per slot ({} is the number as spoken).
FRAMES = {
    "phone": ["It is {}.", "{}.", "My phone number is {}."],
    "zip_code": ["{}.", "My zip code is {}.", "It's {}."],
    "order_id": ["{}.", "The order number is {}.", "It's {}."],
    "pin_number": ["{}.", "My pin is {}.", "It is {}."],
}
CONTROL = ["Yes that's right.", "No.", "My name is Sam Example.", "I don't have it with me.",
           "Can I just talk to a person please?", "It was already delivered."]


def numbers(rng: random.Random, per_slot: int) -> list[tuple[str, str, str]]:
    """(slot, text said, value the dialogue should read) for ``per_slot`` numbers a slot."""
    out = []
    for slot, frames in FRAMES.items():
        for i in range(per_slot):
            if slot == "phone":
                digits = str(rng.randint(2, 9)) + "".join(rng.choices("0123456789", k=9))
                value = f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"
            else:
                n = DIGIT_COUNTS.get(slot, PIN_DIGITS)
                digits = "".join(rng.choices("0123456789", k=n))
                value = digits
            spoken = say_digits(digits)
            if i % 3 == 2:  # some callers say "oh" for zero
                spoken = re.sub(r"\bzero\b", "oh", spoken)
            text = frames[i % len(frames)].format(spoken)
            out.append((slot, text[0].upper() + text[1:], value))
    return out


def main() -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-slot", type=int, default=8, help="numbers per slot")
    ap.add_argument("--renderings", type=int, default=2, help="renderings of each, per speed")
    ap.add_argument("--seed", type=int, default=SEED,
                    help="another set of numbers (to try prompts on, not to report)")
    ap.add_argument("--prompt", default=None, help="instead of asr.digit_prompt")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    settings = load_settings()
    asr = ModelBundle(settings).asr()
    prompt = settings.asr.digit_prompt if args.prompt is None else args.prompt
    cases = numbers(random.Random(args.seed), args.per_slot)
    voices = {s: PiperTTS(settings.tts.voice, length_scale=s) for s in SPEEDS}

    def said(text: str) -> list[np.ndarray]:
        return [telephone(voices[s].synthesize(text), 16000)
                for s in SPEEDS for _ in range(args.renderings)]

    t0 = time.perf_counter()
    rows = []
    for slot, text, value in cases:
        for audio in said(text):
            row = {"slot": slot, "said": text, "value": value}
            for name, p in (("plain", ""), ("prompted", prompt)):
                heard = decode_for(asr, audio, p).text
                got = normalise(slot, heard)
                row[name] = {"heard": heard, "value": got.value if got else None,
                             "right": got is not None and got.value == value}
            rows.append(row)
    per_slot = {}
    for row in rows:
        tally = per_slot.setdefault(row["slot"], {"n": 0, "plain": 0, "prompted": 0})
        tally["n"] += 1
        tally["plain"] += row["plain"]["right"]
        tally["prompted"] += row["prompted"]["right"]
    control = []
    for text in CONTROL:
        for audio in said(text):
            control.append({"said": text, "plain": asr.decode(audio).text,
                            "prompted": decode_for(asr, audio, prompt).text})
    changed = [c for c in control if c["plain"] != c["prompted"]]

    print(f"{'slot':<11}{'n':>4}{'plain':>8}{'prompted':>10}")
    for slot, t in per_slot.items():
        print(f"{slot:<11}{t['n']:>4}{t['plain'] / t['n']:>8.2f}{t['prompted'] / t['n']:>10.2f}")
    n = len(rows)
    plain = sum(r["plain"]["right"] for r in rows) / n
    prompted = sum(r["prompted"]["right"] for r in rows) / n
    print(f"{'all':<11}{n:>4}{plain:>8.2f}{prompted:>10.2f}")
    print(f"control: {len(changed)} of {len(control)} transcripts changed by the prompt")
    for c in changed:
        print(f"  {c['said']!r}: {c['plain']!r} -> {c['prompted']!r}")
    result = {"machine": machine(), "prompt": prompt, "seed": args.seed, "speeds": SPEEDS,
              "renderings": args.renderings, "numbers": len(cases), "utterances": n,
              "accuracy": {"plain": round(plain, 3), "prompted": round(prompted, 3)},
              "per_slot": per_slot, "control_changed": changed, "rows": rows,
              "wall_s": round(time.perf_counter() - t0, 1)}
    if args.json:
        write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
