"""Which road users are anonymized (``--classes``): the COCO labels the detectors keep, with
bicycles split in two. A bicycle that no person's box overlaps is parked, identifies nobody and is
left alone by default; a ridden one stays (its rider is masked as a person anyway). Motorcycles
and scooters carry plates and stay.

The class is decided per group of duplicate boxes (``detector.group_duplicates`` groups every
vehicle label together), by its best box at or above its threshold: where the detector sees one
thing as both a bicycle and, less surely, a motorcycle (as NanoDet does with a dense rack of parked
bicycles), it is the bicycle.
"""

from __future__ import annotations

from .base import Detection

CLASS_NAMES = ("person", "bicycle", "parked-bicycle", "car", "motorcycle", "bus", "train", "truck")
DEFAULT_CLASSES = tuple(name for name in CLASS_NAMES if name != "parked-bicycle")
#: A bicycle is ridden when a person's box with at least ``RIDER_SCORE`` covers at least
#: ``RIDDEN_OVERLAP`` of it. A rider is seen whole and close to the bicycle, so the score can be
#: stricter than the person threshold, which is low for far pedestrians: rows of parked bicycles
#: make faint false persons. The rider, however faint, is masked as a person in any case.
RIDDEN_OVERLAP = 0.1
RIDER_SCORE = 0.5


def chosen(groups: list[list[Detection]], classes: tuple[str, ...], wrap_width: int | None) -> list[list[Detection]]:
    """The groups (each sorted best first) of the chosen classes; a bicycle is ``bicycle`` when it
    has a rider, else ``parked-bicycle``."""
    riders = [d for group in groups for d in group if d.label == "person" and d.score >= RIDER_SCORE]

    def name(group: list[Detection]) -> str:
        d = next((d for d in group if d.score >= d.threshold), group[0])
        if d.label != "bicycle":
            return d.label
        area = (d.x1 - d.x0) * (d.y1 - d.y0)
        ridden = any(intersection(d, rider, wrap_width) >= RIDDEN_OVERLAP * area for rider in riders)
        return "bicycle" if ridden else "parked-bicycle"

    return [group for group in groups if name(group) in classes]


def shifts(wrap_width: int | None) -> tuple[int, ...]:
    """The x offsets under which two boxes are compared: across the seam too on a panorama."""
    return (0,) if wrap_width is None else (0, wrap_width, -wrap_width)


def intersection(a: Detection, b: Detection, wrap_width: int | None) -> float:
    """The area two boxes share (across a panorama's seam too)."""
    h = max(0.0, min(a.y1, b.y1) - max(a.y0, b.y0))
    return max(h * max(0.0, min(a.x1, b.x1 + s) - max(a.x0, b.x0 + s)) for s in shifts(wrap_width))


