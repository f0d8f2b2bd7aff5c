"""Shared helpers for the scripts: where the data is, percentiles, JSON output."""

from __future__ import annotations

import csv
import json
import os
import platform
import statistics
import sys
import tomllib
from dataclasses import dataclass
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ABCD_EVAL = ROOT / "scripts" / "data" / "abcd_eval.toml"


def shared_data() -> Path:
    """../shared/data beside the checkout (SWITCHBOARD_DATA overrides); exit if absent."""
    path = Path(os.environ.get("SWITCHBOARD_DATA", ROOT.parent / "shared" / "data"))
    if not path.is_dir():
        sys.exit(f"error: shared data not found at {path} (set SWITCHBOARD_DATA)")
    return path


def asr_refs(data: Path) -> list[dict[str, str]]:
    with open(data / "asr" / "refs.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def subset_of(row: dict[str, str]) -> str:
    return "asterisk_8k" if row["path"].startswith("asr/asterisk_8k/") else "wideband"


def first_per_subset(rows: list[dict[str, str]], limit: int) -> list[dict[str, str]]:
    """The first ``limit`` rows of each subset, in file order (all rows when limit is 0)."""
    seen: dict[str, int] = {}
    kept = []
    for row in rows:
        subset = subset_of(row)
        if not limit or seen.get(subset, 0) < limit:
            seen[subset] = seen.get(subset, 0) + 1
            kept.append(row)
    return kept


@dataclass(frozen=True)
class Query:
    """One held-out ABCD utterance and the subflow (article, intent) it belongs to."""

    text: str
    subflow: str
    set: str  # "authored" (written by the project) or "sample" (real dialogue turn)
    source: str = ""


def abcd_queries(path: Path = ABCD_EVAL, limit: int = 0) -> list[Query]:
    """The eval file's utterances: the first ``limit`` subflows (all when 0), then the
    sample-dialogue turns."""
    raw = tomllib.loads(Path(path).read_text())
    subflows = [k for k in raw if not k.startswith("_")]
    if limit:
        subflows = subflows[:limit]
    queries = [Query(u, s, "authored") for s in subflows for u in raw[s]["utterances"]]
    for name, dialogue in raw.get("_sample_dialogues", {}).items():
        src = dialogue.get("source", name)
        queries += [Query(u, dialogue["subflow"], "sample", src)
                    for u in dialogue["utterances"]]
    return queries


def p50_p95(ms: list[float]) -> tuple[float, float]:
    """Median and 95th percentile (nearest rank below) of timings; zeros when empty."""
    srt = sorted(ms)
    if not srt:
        return 0.0, 0.0
    return statistics.median(srt), srt[min(len(srt) - 1, int(0.95 * len(srt)))]


def machine() -> dict[str, object]:
    return {
        "date": date.today().isoformat(),
        "machine": platform.node(),
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def run_benchmark(amain, args, print_table) -> None:
    """A live benchmark's run: the libraries' logs quiet, the load printed first (a busy
    machine makes the figures worthless), then ``amain(args)``'s table and JSON."""
    import asyncio
    import logging

    from loguru import logger

    logger.remove()
    logging.basicConfig(level=logging.ERROR)
    print(f"load average at start: {os.getloadavg()}", flush=True)
    result = asyncio.run(amain(args))
    print_table(result)
    write_json(args.json, result)


def write_json(path: str | None, payload: dict) -> None:
    if not path:
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {path}")
