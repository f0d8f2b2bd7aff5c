"""Shared fixtures: the real data in ../shared/data, and models loaded once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SWITCHBOARD_DATA", ROOT.parent / "shared" / "data"))


def pytest_configure(config):
    from loguru import logger

    logger.remove()


@pytest.fixture(scope="session")
def data() -> Path:
    if not DATA.is_dir():
        pytest.skip(f"shared data not found at {DATA}: real-recording tests skipped")
    return DATA


@pytest.fixture(scope="session")
def settings_factory(tmp_path_factory):
    from switchboard.config import load_settings

    def make(**overrides):
        settings = load_settings(overrides=overrides or None)
        if DATA.is_dir():
            settings.nlu.kb_dir = str(DATA / "kb" / "abcd")
        settings.store.url = "sqlite:///:memory:"
        return settings

    return make


@pytest.fixture(scope="session")
def bundle(settings_factory):
    from switchboard.models.bundle import ModelBundle

    return ModelBundle(settings_factory())


@pytest.fixture()
def server_settings(settings_factory, tmp_path):
    """Settings for a whole server started in the test: budgets no loaded machine can
    breach, a call store in the test's folder, SIP and HTTP on free loopback ports."""
    from tests.helpers import generous_budgets

    settings = generous_budgets(settings_factory())
    settings.store.url = f"sqlite:///{tmp_path / 'calls.db'}"
    settings.sip.port = 0
    settings.server.http_port = 0
    return settings
