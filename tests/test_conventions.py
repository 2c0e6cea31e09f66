"""What users expect of a command line: a version, completion, plain output for logs, light
scene tools, and an optional service."""

from __future__ import annotations

import subprocess
import sys

from helpers import PROJECT, cli

LUND = PROJECT / "fixtures" / "lund"


def test_version_and_completion():
    from scanvan_sfm import __version__
    version = cli("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"scanvan-sfm {__version__}"
    help_text = cli("--help").stdout
    assert "--install-completion" in help_text and "--show-completion" in help_text


def test_off_a_terminal_output_is_plain(tmp_path):
    info = cli("scene", "info", LUND / "sfm_data.bin", env={"NO_COLOR": "1"})
    assert info.returncode == 0 and "\x1b[" not in info.stdout + info.stderr
    assert "| reconstructed views      | 10" in info.stdout  # an ASCII table
    main = tmp_path / "main"
    (main / "images").mkdir(parents=True)
    (main / "images" / "01.jpg").write_bytes((LUND / "images" / "01.jpg").read_bytes())
    masks = cli("masks", main)  # no probability maps: the image fails, the step goes on
    assert masks.returncode == 1 and "\x1b[" not in masks.stderr
    assert "masks: 1/1" in masks.stderr and "failed: 01.jpg" in masks.stderr


def test_scene_tools_load_neither_tensorflow_nor_the_web_service():
    code = ("import sys\nfrom scanvan_sfm import cli\n"
            f"sys.argv = ['scanvan-sfm', 'scene', 'info', {str(LUND / 'sfm_data.bin')!r}]\n"
            "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('tensorflow', 'fastapi', 'uvicorn', 'starlette') if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_serve_without_its_extra_is_one_line():
    code = ("import sys\nsys.modules['uvicorn'] = None\nfrom scanvan_sfm import cli\n"
            "sys.argv = ['scanvan-sfm', 'serve', '--scene', 'scene.json']\ncli.main()\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "pip install 'scanvan-sfm[serve]'" in result.stderr
