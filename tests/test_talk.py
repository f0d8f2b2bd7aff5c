"""``switchboard talk`` through a virtual sound device, and without one.

The device is ALSA's ``file`` plugin over ``null`` (PortAudio sees it as any other
device): the microphone reads a real recording from a raw file, the speakers write what
the bot says to another. The command runs as a user runs it, in its own process: what it
prints must hold the recording's words and the bot's replies, and the speakers' file must
hold the bot's greeting. With no such device, it says so in one line.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.test_webrtc import caller_pcm, transcribe16

pytestmark = pytest.mark.slow

ALSA_CONF = Path("/usr/share/alsa/alsa.conf")


def need_pyaudio():
    pytest.importorskip("pyaudio", reason="PyAudio missing (scripts/setup installs it)")
    if not ALSA_CONF.is_file():
        pytest.skip("no ALSA configuration to build the virtual device on")


def virtual_device(tmp_path: Path, mic: np.ndarray) -> dict[str, str]:
    """An ALSA configuration with ``switchboard_test``: the environment to use it."""
    (tmp_path / "in.raw").write_bytes(mic.astype("<i2").tobytes())
    conf = tmp_path / "asound.conf"
    conf.write_text(f"""<{ALSA_CONF}>
pcm.switchboard_test {{
  type file
  slave.pcm "null"
  file "{tmp_path / 'out.raw'}"
  infile "{tmp_path / 'in.raw'}"
  format "raw"
  hint {{ show on description "file-backed test device" }}
}}
""")
    return os.environ | {"ALSA_CONFIG_PATH": str(conf)}


def run_talk(args: list[str], env: dict[str, str], timeout: float):
    return subprocess.run([sys.executable, "-m", "switchboard.cli", "talk", *args],
                          env=env, capture_output=True, text=True, timeout=timeout)


def test_talk_says_in_one_line_when_there_is_no_sound_device(tmp_path):
    need_pyaudio()
    done = run_talk(["--device", "no-such-device"], os.environ | {"HOME": str(tmp_path)}, 60)
    assert done.returncode == 2, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no microphone"), done.stderr
    assert "sound device" in lines[0]


def test_talk_through_a_virtual_device_hears_the_caller_and_answers(data, bundle, tmp_path):
    need_pyaudio()
    # Ample silence after the speech: the file plugin reads stale data past the file's end.
    mic = caller_pcm(data, lead_s=4.0, speech_s=11.0, tail_s=30.0)
    env = virtual_device(tmp_path, mic)
    # The speech ends at 15 s; the rest is the reply's margin on a loaded machine.
    done = run_talk(["--device", "switchboard_test", "--seconds", "24", "--no-store"],
                    env, 240)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout.lower()
    assert "you: and so my fellow american" in out, out
    assert out.count("bot: ") >= 2, out  # the greeting, then a reply to the caller
    assert "call ended (time limit)" in out, out
    heard = (tmp_path / "out.raw").read_bytes()
    assert len(heard) >= 32000 * 15, len(heard)  # paced output, not a burst
    said = transcribe16(bundle, heard[: 32000 * 21])
    assert "thanks for calling" in said and "help you" in said, said
