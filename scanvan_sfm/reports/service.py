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
from .viewer import vendor_folders


@dataclass
class ServiceConfig:
    scene: Path
    db: Path
    token: str | None = None
    viewer_cache: Path | None = None    # where the viewer packages are unpacked (default: the user cache)
    viewer_assets: Path | None = None   # a folder of their tarballs, to install them offline
    submissions_per_minute: int = 10


@dataclass
class Service:
    """One app's shared state (kept on ``app.state.service``, reached with ``ServiceDep``)."""

    config: ServiceConfig
    scene: SfMData
    viewpoints: dict[int, tuple[Viewpoint, Path]]  # the published panoramas and photos, their image files
    vendor: dict[str, Path]   # the viewer packages' folders, by URL prefix (``viewer.VENDOR``)
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
        """The service's state, after checking the scene and installing the viewer packages
        if need be (before the store is created)."""
        scene = read_scene(config.scene, structure=False)
        viewpoints = published_viewpoints(scene, config.scene)
        if not viewpoints:
            raise InputError(f"{config.scene}: no reconstructed panorama or photo with a published image")
        vendor = vendor_folders(config.viewer_cache, config.viewer_assets)
        return cls(config=config, scene=scene, viewpoints=viewpoints, vendor=vendor, store=ReportStore(config.db),
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


async def current_service(request: Request) -> Service:
    """The app's ``Service`` (async: reading an attribute needs no worker thread)."""
    return request.app.state.service


ServiceDep = Annotated[Service, Depends(current_service)]
