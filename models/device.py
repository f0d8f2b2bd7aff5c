"""Device choice: CUDA when a usable GPU is present, else CPU."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class DeviceInfo:
    """Which device each runtime should use."""

    ctranslate2: str  # "cuda" or "cpu"
    onnx_providers: tuple[str, ...]

    @property
    def has_cuda(self) -> bool:
        return self.ctranslate2 == "cuda"


@functools.lru_cache(maxsize=1)
def detect(prefer: str = "auto") -> DeviceInfo:
    """Pick the device: ``prefer`` is "auto", "cpu" or "cuda" (env SWITCHBOARD_DEVICE wins)."""
    prefer = os.environ.get("SWITCHBOARD_DEVICE", prefer)
    ct2 = "cpu"
    if prefer in ("auto", "cuda"):
        try:
            import ctranslate2

            if ctranslate2.get_cuda_device_count() > 0:
                ct2 = "cuda"
        except Exception:  # noqa: BLE001 - a broken CUDA install must not stop a CPU run
            ct2 = "cpu"
    providers: tuple[str, ...] = ("CPUExecutionProvider",)
    if prefer in ("auto", "cuda"):
        try:
            import onnxruntime

            if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
                providers = ("CUDAExecutionProvider", "CPUExecutionProvider")
        except Exception:  # noqa: BLE001
            pass
    return DeviceInfo(ctranslate2=ct2, onnx_providers=providers)
