"""Shared helpers for the scripts: where the data is, percentiles, JSON output."""

from __future__ import annotations

import csv
import json
import os
import platform
import sys
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


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


def write_json(path: str | None, payload: dict) -> None:
    if not path:
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {path}")
