"""The state every route of the service shares: its configuration, the scene's published
viewpoints, the report store, the moderator token and sessions, and the rate limits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request

from ..errors import InputError
from ..sfm import Pinhole, SfMData, View, read_scene
from ..sfm.io import images_root
from .models import Viewpoint
from .security import GUESSES_PER_MINUTE, ModeratorToken, RateLimiter, Sessions
from .store import ReportStore

PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: URL prefix → folder inside ``node_modules`` (the npm packages of package.json).
VENDOR = {
    "three": "three/build",
    "psv-core": "@photo-sphere-viewer/core",
    "psv-markers": "@photo-sphere-viewer/markers-plugin",
    "swagger-ui": "swagger-ui-dist",
}


@dataclass
class ServiceConfig:
    scene: Path
    db: Path
    token: str | None = None
    node_modules: Path = PROJECT_ROOT / "node_modules"
    submissions_per_minute: int = 10


@dataclass
class Service:
    """One app's shared state (kept on ``app.state.service``, reached with ``ServiceDep``)."""

    config: ServiceConfig
    scene: SfMData
    viewpoints: dict[int, tuple[Viewpoint, Path]]  # the published panoramas and photos, their image files
    store: ReportStore
    token: ModeratorToken
    sessions: Sessions
    submissions: RateLimiter  # reports per client address
    guesses: RateLimiter      # wrong moderator tokens per client address

    def photo(self, view_id: int) -> tuple[View, Pinhole] | None:
        """A published photo's view and camera; ``None`` for a panorama."""
        if view_id not in self.viewpoints:
            return None
        view = self.scene.views[view_id]
        intrinsic = self.scene.intrinsics[view.id_intrinsic]
        return (view, intrinsic) if isinstance(intrinsic, Pinhole) else None

    @classmethod
    def open(cls, config: ServiceConfig) -> Service:
        """The service's state, after checking the scene and the viewer packages (before the
        store is created)."""
        scene = read_scene(config.scene, structure=False)
        viewpoints = published_viewpoints(scene, config.scene)
        if not viewpoints:
            raise InputError(f"{config.scene}: no reconstructed panorama or photo with a published image")
        check_vendor(config.node_modules)
        return cls(config=config, scene=scene, viewpoints=viewpoints, store=ReportStore(config.db),
                   token=ModeratorToken(config.token), sessions=Sessions(),
                   submissions=RateLimiter(config.submissions_per_minute, 60.0),
                   guesses=RateLimiter(GUESSES_PER_MINUTE, 60.0))


def published_viewpoints(scene: SfMData, scene_path: Path) -> dict[int, tuple[Viewpoint, Path]]:
    """The reconstructed panoramas and photos (pinhole views, any distortion) whose published
    image exists, by view id."""
    root = images_root(scene, scene_path)
    found = {}
    for view_id, view in sorted(scene.reconstructed_views().items()):
        path = scene.image_path(view, root)
        photo = isinstance(scene.intrinsics[view.id_intrinsic], Pinhole)
        if (photo or scene.is_equirectangular(view)) and path.is_file():
            pose = scene.extrinsics[view.id_pose]
            found[view_id] = (Viewpoint(id=view_id, kind="photo" if photo else "panorama", image=view.image_path,
                                        width=view.width, height=view.height, center=pose.center), path)
    return found


def check_vendor(node_modules: Path) -> None:
    """Refuse to start without the npm packages the pages load."""
    missing = [name for name in VENDOR.values() if not (node_modules / name).is_dir()]
    if missing:
        raise InputError(f"{node_modules}: the viewer packages are not installed ({', '.join(missing)}); "
                         f"run `npm ci` in {PROJECT_ROOT}")


async def current_service(request: Request) -> Service:
    """The app's ``Service`` (async: reading an attribute needs no worker thread)."""
    return request.app.state.service


ServiceDep = Annotated[Service, Depends(current_service)]
