"""Schemathesis against the service's own OpenAPI spec: generated valid and invalid calls to
every operation, as a visitor and as a moderator; no 5xx, and every answer matches the spec."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import hypothesis
import pytest
import schemathesis
from schemathesis.specs.openapi.checks import positive_data_acceptance

from helpers import OPENMVG, WITHOUT_SHARED
from scanvan_sfm.reports.app import create_app
from service_helpers import TOKEN, config

if not OPENMVG.is_dir():  # what follows reads it as the module loads
    pytest.skip(WITHOUT_SHARED, allow_module_level=True)

_folder = Path(tempfile.mkdtemp(prefix="scanvan-openapi-"))
atexit.register(shutil.rmtree, _folder, True)
APP = create_app(config(_folder / "reports.sqlite", submissions_per_minute=1_000_000))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


def unchecked(case) -> list:
    """A submission's polygon must also enclose an area and fit in 160°, which JSON Schema cannot
    say: schema-valid ones may get a 422 (tests/test_service_security.py covers them)."""
    return [positive_data_acceptance] if (case.method, case.path) == ("POST", "/api/reports") else []


@schema.parametrize()
@hypothesis.settings(max_examples=60, deadline=None,
                     suppress_health_check=list(hypothesis.HealthCheck))
def test_api_as_moderator(case):
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"}, excluded_checks=unchecked(case))


@schema.parametrize()
@hypothesis.settings(max_examples=25, deadline=None, suppress_health_check=list(hypothesis.HealthCheck))
def test_api_as_visitor(case):
    case.call_and_validate(excluded_checks=unchecked(case))
