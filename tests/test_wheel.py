"""The wheel as a user installs it: built with ``python -m build``, installed into a fresh venv
outside the checkout, and run from a temporary folder: the CLI, and ``serve``, whose page loads
in the browser and takes a report.

The new venv gets the wheel alone (``--no-deps``); its dependencies come from this venv's
site-packages through a ``.pth`` line (a folder added that way is not scanned for ``.pth`` files,
so this checkout's editable install stays out), which saves installing TensorFlow again."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
import zipfile

import orjson
import pytest

from helpers import GPS_SCENE, PROJECT, needs_shared

pytestmark = needs_shared

TOKEN = "wheel-moderator-token-0123456789"


def run(*args, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=300, **kwargs)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(the venv's bin folder, a folder outside the checkout, the environment to run in)."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"  # a copy: building writes build/ and an .egg-info beside the sources
    shutil.copytree(PROJECT / "scanvan_sfm", source / "scanvan_sfm",
                    ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc", "node_modules"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(PROJECT / name, source / name)
    run(sys.executable, "-m", "build", "--wheel", "--outdir", root / "dist", source)
    (wheel,) = (root / "dist").glob("scanvan_sfm-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert {"scanvan_sfm/reports/web/package-lock.json", "scanvan_sfm/reports/web/index.html"} <= set(names)
    assert not [n for n in names if "node_modules" in n or n.endswith(".tgz")]  # the packages are not in it

    venv = root / "venv"
    # No PYTHONPATH: a checkout on it would look like an installed scanvan-sfm to pip and to Python
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"XDG_CACHE_HOME": str(root / "cache")}
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    run(sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "--no-deps", "--no-index",
        "--quiet", wheel, env=env)
    purelib = run(venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                  env=env)
    with open(purelib.stdout.strip() + "/dependencies.pth", "w") as pth:
        pth.write(sysconfig.get_paths()["purelib"] + "\n")
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    imported = run(venv / "bin" / "python", "-c", "import scanvan_sfm; print(scanvan_sfm.__file__)",
                   cwd=elsewhere, env=env)
    assert imported.stdout.startswith(purelib.stdout.strip() + "/scanvan_sfm/"), imported.stdout
    return venv / "bin", elsewhere, env


def test_the_cli_runs_from_the_wheel(installed):
    bin_dir, elsewhere, env = installed
    version = run(bin_dir / "scanvan-sfm", "--version", cwd=elsewhere, env=env)
    assert version.stdout.strip() == "scanvan-sfm 0.1.0"
    info = orjson.loads(run(bin_dir / "scanvan-sfm", "scene", "info", GPS_SCENE, "--json", cwd=elsewhere,
                            env=env).stdout)
    assert (info["views"], info["reconstructed_views"], info["landmarks"]) == (9, 8, 3382)


def test_serve_from_the_wheel_takes_a_report_in_the_browser(installed, browser, viewer_tarballs):
    bin_dir, elsewhere, env = installed
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([bin_dir / "scanvan-sfm", "serve", "--scene", GPS_SCENE, "--db", "reports.sqlite",
                               "--port", str(port), "--assets", viewer_tarballs], cwd=elsewhere,
                              env=env | {"SCANVAN_MODERATOR_TOKEN": TOKEN}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            try:
                with urllib.request.urlopen(url + "/api/viewpoints", timeout=5) as answer:
                    assert len(orjson.loads(answer.read())) == 8
                    break
            except OSError:
                assert time.monotonic() < deadline, "serve did not start"
                time.sleep(0.2)
        problems: list[str] = []
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.goto(url + "/")
        page.click("button[data-id='3']")
        page.wait_for_selector("body[data-viewpoint='3']", timeout=60_000)
        box = page.locator("#viewer").bounding_box()
        centre = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        for count, (dx, dy) in enumerate([(-90, -70), (110, -60), (80, 90)], start=1):
            page.mouse.click(centre[0] + dx, centre[1] + dy)
            page.wait_for_selector(f"#vertex-count:has-text('{count} corner')")
        page.click("#submit")
        page.wait_for_selector("#confirmation:has-text('report number')")
        report_id = int(page.text_content("#confirmation").split("report number is ")[1].split(";")[0])
        page.close()
        assert not problems, problems
        with urllib.request.urlopen(f"{url}/api/reports/{report_id}", timeout=5) as answer:
            assert orjson.loads(answer.read())["status"] == "pending"
    finally:
        server.terminate()
        server.wait(30)
    cache = elsewhere.parent / "cache" / "scanvan-sfm" / "viewer"
    assert (cache / "three@0.185.1" / "build" / "three.module.js").is_file()  # installed from --assets
    assert (elsewhere / "reports.sqlite").is_file()
