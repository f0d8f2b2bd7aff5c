"""Optional call recording: each party's voice and what each party heard, as WAV files.

Two mono 16 kHz files per leg (``<leg>-said.wav``, ``<leg>-heard.wav``), written frame by
frame as the call goes (buffered file writes of 640 bytes: nothing to take off the loop),
so a crashed server still leaves the audio up to its last flush. Off by default
(``[store] record_audio``): recordings are personal data.
"""

from __future__ import annotations

import wave
from pathlib import Path


class CallRecorder:
    """Writes one call's audio under ``folder``."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._files: dict[str, wave.Wave_write] = {}

    def said(self, leg: str, pcm: bytes) -> None:
        self._write(f"{leg}-said", pcm)

    def heard(self, leg: str, pcm: bytes) -> None:
        self._write(f"{leg}-heard", pcm)

    def _write(self, name: str, pcm: bytes) -> None:
        out = self._files.get(name)
        if out is None:
            out = wave.open(str(self.folder / f"{name}.wav"), "wb")  # noqa: SIM115
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(16000)
            self._files[name] = out
        out.writeframesraw(pcm)

    def close(self) -> dict[str, Path]:
        """Finish every file (fixing the WAV headers); name → path."""
        paths = {}
        for name, out in self._files.items():
            out.close()
            paths[name] = self.folder / f"{name}.wav"
        self._files.clear()
        return paths
