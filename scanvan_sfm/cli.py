"""The ``scanvan-sfm`` command line: thin wrappers over the package's functions."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table

from .errors import InputError
from .sfm import Parts, convert_scene, read_scene, validate_scene
from .sfm.bin_io import read_bin_counts
from .sfm.io import images_root

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Anonymize the panoramas of an openMVG reconstruction.")
scene_app = typer.Typer(no_args_is_help=True, help="Read, convert and check openMVG scenes.")
app.add_typer(scene_app, name="scene")
out = Console()
err = Console(stderr=True)

SceneFile = Annotated[Path, typer.Argument(help="sfm_data .json or .bin", show_default=False)]


@scene_app.command("info")
def scene_info(file: SceneFile,
               as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Counts of views, reconstructed views, intrinsics, poses, landmarks, observations."""
    if file.suffix == ".bin":
        scene, counts = read_bin_counts(file)
    else:
        scene = read_scene(file)
        counts = {name: len(getattr(scene, name)) for name in ("structure", "control_points")}
        counts |= {f"{name}_observations": getattr(scene, name).n_observations
                   for name in ("structure", "control_points")}
    unposed = [k for k, v in scene.views.items() if not scene.is_reconstructed(v)]
    info = {
        "file": str(file), "version": scene.version, "root_path": scene.root_path,
        "views": len(scene.views), "reconstructed_views": len(scene.views) - len(unposed),
        "unreconstructed_view_ids": unposed,
        "intrinsics": dict(Counter(i.type for i in scene.intrinsics.values())),
        "poses": len(scene.extrinsics),
        "landmarks": counts["structure"], "observations": counts["structure_observations"],
        "control_points": counts["control_points"],
    }
    if as_json:
        sys.stdout.write(orjson.dumps(info, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    table = Table(title=str(file), show_header=False)
    for key, value in info.items():
        if key != "file":
            table.add_row(key.replace("_", " "), ", ".join(f"{k}: {v}" for k, v in value.items())
                          if isinstance(value, dict) else str(value))
    out.print(table)


@scene_app.command("convert")
def scene_convert(
    src: SceneFile,
    dst: Annotated[Path, typer.Argument(help="output .json or .bin", show_default=False)],
    views: Annotated[bool, typer.Option("--views", "-V")] = False,
    intrinsics: Annotated[bool, typer.Option("--intrinsics", "-I")] = False,
    extrinsics: Annotated[bool, typer.Option("--extrinsics", "-E")] = False,
    structure: Annotated[bool, typer.Option("--structure", "-S")] = False,
    control_points: Annotated[bool, typer.Option("--control-points", "-C")] = False,
    root: Annotated[str | None, typer.Option(help="Write this root_path instead.")] = None,
) -> None:
    """openMVG's ConvertSfM_DataFormat: all parts unless some are chosen."""
    chosen = [(views, Parts.VIEWS), (intrinsics, Parts.INTRINSICS), (extrinsics, Parts.EXTRINSICS),
              (structure, Parts.STRUCTURE), (control_points, Parts.CONTROL_POINTS)]
    parts = Parts(0)
    for flag, part in chosen:
        if flag:
            parts |= part
    scene = convert_scene(src, dst, parts or Parts.ALL, root)
    err.print(f"wrote {dst}: {len(scene.views)} views, {len(scene.structure)} landmarks")


@scene_app.command("validate")
def scene_validate(
    file: SceneFile,
    images_root_dir: Annotated[
        Path | None, typer.Option("--images-root", help="Folder of the images (overrides root_path).")] = None,
    skip_images: Annotated[bool, typer.Option("--skip-images", help="Do not look at the image files.")] = False,
) -> None:
    """Exit 0 when valid, 1 with every problem listed, 2 when unreadable."""
    scene = read_scene(file)
    root = images_root(scene, file, images_root_dir)
    problems = validate_scene(scene, images_root=root, check_images=not skip_images)
    for problem in problems:
        print(f"{file}: {problem}")
    table = Table(show_header=False)
    table.add_row("views", str(len(scene.views)))
    table.add_row("reconstructed", str(len(scene.reconstructed_views())))
    table.add_row("landmarks", str(len(scene.structure)))
    table.add_row("images checked", "no" if skip_images else f"yes ({root})")
    table.add_row("problems", str(len(problems)))
    err.print(table)
    raise typer.Exit(1 if problems else 0)


def main() -> None:
    """Entry point: bad input ends in one line on stderr and exit code 2."""
    try:
        app()
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
