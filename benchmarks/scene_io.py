"""Scene conversion speed and memory on a large synthetic scene, against named baselines.

Scene: 2,000 posed spherical views (5376×2688, ECEF centre priors) and 1,000,000 landmarks with
3–6 observations each, in openMVG's exact JSON layout (~1.9 GB) and as .bin (~190 MB).

Baselines: openMVG's C++ ConvertSfM_DataFormat, measured on this machine kind for the issue
(JSON→bin 11.6 s / 1.55 GB, bin→JSON 10.8 s / 0.59 GB) and re-measured here when the binary is
on PATH; and a plain ``orjson.loads`` of the JSON, measured in this run.

Usage: python benchmarks/scene_io.py [--views 2000] [--landmarks 1000000] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OPENMVG_REFERENCE = {"json→bin": (11.6, 1.55e9), "bin→json": (10.8, 0.59e9)}
CLI = [sys.executable, "-m", "scanvan_sfm.cli"]


def run(cmd: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one child process.

    A child's peak RSS starts at its parent's RSS at fork time on Linux, so this process must
    hold nothing big.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"failed ({status}): {' '.join(cmd)}")
    return seconds, usage.ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--views", type=int, default=2000)
    parser.add_argument("--landmarks", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: a temp dir)")
    args = parser.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="scene_io_"))
    work.mkdir(parents=True, exist_ok=True)
    src_json, src_bin = work / "scene.json", work / "scene.bin"
    if not src_json.exists():  # in a child, so that this process stays small (see run())
        run([sys.executable, "-c", "from scanvan_sfm.sfm.synthetic import synthetic_scene\n"
             "from scanvan_sfm.sfm.io import write_scene\n"
             f"s = synthetic_scene({args.views}, {args.landmarks})\n"
             f"write_scene(s, {str(src_json)!r}); write_scene(s, {str(src_bin)!r})"])
    print(f"scene: {args.views} views, {args.landmarks} landmarks; "
          f"JSON {src_json.stat().st_size / 1e9:.2f} GB, bin {src_bin.stat().st_size / 1e6:.0f} MB")
    run(CLI + ["scene", "info", str(src_bin)])  # warm the numba cache and the page cache

    rows = []
    for label, cmd in [
        ("json→bin", CLI + ["scene", "convert", str(src_json), str(work / "out.bin")]),
        ("bin→json", CLI + ["scene", "convert", str(src_bin), str(work / "out.json")]),
        ("info (bin)", CLI + ["scene", "info", str(src_bin)]),
        ("orjson.loads (json)", [sys.executable, "-c",
                                 f"import orjson; orjson.loads(open({str(src_json)!r}, 'rb').read())"]),
    ]:
        seconds, rss = min((run(cmd) for _ in range(2)), key=lambda r: r[0])
        rows.append((label, seconds, rss))
    openmvg = shutil.which("openMVG_main_ConvertSfM_DataFormat")
    measured = {}
    if openmvg:
        measured["json→bin"] = run([openmvg, "-i", str(src_json), "-o", str(work / "mvg.bin")])
        measured["bin→json"] = run([openmvg, "-i", str(src_bin), "-o", str(work / "mvg.json")])
    orjson_seconds = rows[3][1]
    print(f"{'step':22} {'seconds':>8} {'peak MB':>8}  vs openMVG (time, memory)      vs orjson.loads")
    for label, seconds, rss in rows:
        line = f"{label:22} {seconds:8.2f} {rss / 1e6:8.0f}"
        ref = measured.get(label, OPENMVG_REFERENCE.get(label))
        if ref:
            source = "measured" if label in measured else "reference"
            line += f"  {ref[0] / seconds:5.2f}× faster, {rss / ref[1]:4.2f}× memory ({source})"
        if label != "orjson.loads (json)" and "json" in label:
            line += f"  {orjson_seconds / seconds:5.2f}× faster"
        print(line)
    identical = (work / "out.bin").read_bytes() == src_bin.read_bytes()
    print(f"json→bin output identical to the bin written from the same scene: {identical}")
    if args.dir is None:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
