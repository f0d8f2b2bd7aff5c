"""Scanning the server with sipvicious (PyPI) finds no account to guess.

svwar tries to enumerate extensions by REGISTER, INVITE and OPTIONS; svcrack guesses a
known user's password from a word list. Unauthenticated REGISTERs are challenged alike for
users that exist and users that do not, wrong passwords are refused, and nothing in the
answers tells the scanner which extensions exist.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import pytest

from switchboard import serve
from tests.test_sip_support import free_port

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    path = shutil.which(f"sipvicious_{name}", path=str(BIN)) or shutil.which(f"sipvicious_{name}")
    if path is None:
        pytest.skip("sipvicious not installed (scripts/setup --test)")
    return path


async def run(*args: str, timeout: float = 90.0) -> str:
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        out, _ = await proc.communicate()
    return out.decode("utf-8", "replace")


@pytest.fixture()
def settings(settings_factory, tmp_path):
    settings = settings_factory()
    settings.store.url = f"sqlite:///{tmp_path / 'calls.db'}"
    settings.sip.port = 0
    settings.server.http_port = 0
    return settings


def test_sipvicious_finds_no_extension_and_no_password(settings, bundle, tmp_path):
    words = tmp_path / "extensions.txt"
    words.write_text("\n".join(["alice", "bob", "admin", "100", "101", "1000", "agent",
                                "operator", "support"]) + "\n")
    passwords = tmp_path / "passwords.txt"
    passwords.write_text("\n".join(["1234", "password", "alice", "123456", "secret",
                                    "switchboard", "letmein", "qwerty"]) + "\n")

    async def main():
        running = await serve.start(settings, bundle)
        running.users.add("alice", "agent", "a long and unguessed passphrase")
        target = f"udp://127.0.0.1:{running.sip.endpoint.port}"
        local = ["-b", "127.0.0.1", "-P", str(free_port())]
        try:
            out = {}
            out["register"] = await run(tool("svwar"), *local, "-d", str(words), target)
            out["forced"] = await run(tool("svwar"), *local, "-d", str(words), "--force",
                                      target)
            out["options"] = await run(tool("svwar"), *local, "-d", str(words), "-m",
                                       "OPTIONS", "--force", target)
            out["crack"] = await run(tool("svcrack"), *local, "-u", "alice", "-d",
                                     str(passwords), target)
            return out, running.sip.endpoint.registrar.lookup("alice")
        finally:
            await serve.stop(running)

    out, bound = asyncio.run(main())
    # REGISTER: the unknown extension svwar probes first is challenged like any other.
    assert "authentication request for an unknown extension" in out["register"], out
    for scan in ("register", "forced", "options"):
        assert "found nothing" in out[scan], out[scan]
        assert "alice" not in out[scan].split("found nothing")[-1], out[scan]
    assert "alice" not in _found_rows(out["forced"])
    # svcrack: every guess refused, nothing found, no binding made.
    assert "could not find" in out["crack"].lower() or "found nothing" in out["crack"].lower(), \
        out["crack"]
    assert not bound


def _found_rows(output: str) -> str:
    """The result table svwar prints when it finds extensions (absent when it finds none)."""
    return output.split("| Extension")[-1] if "| Extension" in output else ""
