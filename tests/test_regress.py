"""The regression check on the bundled sample scene (what CI runs), and that it bites."""

import shutil

import numpy as np

from helpers import PROJECT, cli
from scanvan_sfm.images import read_mask, write_mask

SAMPLE = PROJECT / "fixtures" / "lund"


def _regress(golden, *args):
    return cli("regress", SAMPLE / "sfm_data_bin.json", "--golden", golden, *args)


def test_sample_scene_matches_its_golden_outputs():
    result = _regress(SAMPLE / "golden")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "REGRESSION" not in result.stdout and "registered scene equal by id: yes" in result.stderr
    assert sum(line.rstrip(" │|").endswith("ok") for line in result.stdout.splitlines()) == 10


def test_a_changed_mask_is_a_regression(tmp_path):
    golden = tmp_path / "golden"
    shutil.copytree(SAMPLE / "golden", golden)
    mask = read_mask(golden / "masks" / "01-mask.png")
    mask[:200, :300] = ~mask[:200, :300]
    write_mask(golden / "masks" / "01-mask.png", mask)
    result = _regress(golden)
    assert result.returncode == 1 and "REGRESSION" in result.stdout
    assert np.count_nonzero(mask) > 0
