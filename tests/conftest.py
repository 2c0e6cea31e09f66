"""Fixtures and hooks shared by the test modules (the constants and helpers are in helpers.py)."""

import pytest
from fastapi.testclient import TestClient

from helpers import (
    BIN_FIXTURES,
    CHROMIUM_ARGS,
    GPS_SCENE,
    JSON_FIXTURES,
    OPENMVG,
    WITHOUT_SHARED,
    cli,
    install_chromium,
)
from scanvan_sfm import npm
from scanvan_sfm.reports.app import create_app
from scanvan_sfm.reports.viewer import pins
from service_helpers import config


def pytest_sessionstart(session):
    if OPENMVG.is_dir():  # without it, the tests that need it are skipped
        assert len(JSON_FIXTURES) == 8 and len(BIN_FIXTURES) == 3, f"the shared fixtures are incomplete: {OPENMVG}"


@pytest.fixture(scope="session")
def anonymized(tmp_path_factory):
    """``anonymize`` run once on 360_flat_gps: its output folder, which no test may change (copy it first)."""
    out = tmp_path_factory.mktemp("anonymized")
    result = cli("anonymize", GPS_SCENE, "--out", out)
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless, driven by Playwright (installed with apt-get when missing)."""
    from playwright.sync_api import sync_playwright

    executable = install_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(executable), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def client(tmp_path):
    """The reporting service on 360_flat_gps with a fresh store (the test is skipped without ../shared)."""
    if not OPENMVG.is_dir():
        pytest.skip(WITHOUT_SHARED)
    with TestClient(create_app(config(tmp_path / "reports.sqlite"))) as client:
        yield client


@pytest.fixture(scope="session")
def viewer_tarballs(tmp_path_factory):
    """The viewer's npm tarballs as the lock file pins them, fetched once with npm (its own cache
    makes that quick): a folder for ``--assets``."""
    folder = tmp_path_factory.mktemp("viewer-tarballs")
    for pin in pins():
        npm.fetch(pin, folder)
    return folder
