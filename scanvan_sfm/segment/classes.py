"""Which road users are anonymized (``--classes``): the COCO labels the detectors keep, with
bicycles split in two. A bicycle that no person's box overlaps is parked, identifies nobody and is
left alone by default; a ridden one stays (its rider is masked as a person anyway). Motorcycles
and scooters carry plates and stay.
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
#: Dense racks of parked bicycles look like motorcycles to the detectors: a faint motorcycle
#: (score below ``RIDER_SCORE``) without a rider that lies mostly (``IN_RACK``) on one bicycle's
#: box is taken for part of the rack. A close scooter scores higher and stays.
IN_RACK = 0.5


def chosen(detections: list[Detection], classes: tuple[str, ...], wrap_width: int | None) -> list[Detection]:
    """The detections of the chosen classes; a bicycle is ``bicycle`` when it has a rider, else
    ``parked-bicycle``, and so is a faint riderless motorcycle in a rack of bicycles."""
    riders = [d for d in detections if d.label == "person" and d.score >= RIDER_SCORE]
    bicycles = [d for d in detections if d.label == "bicycle" and d.score >= d.threshold]

    def covered(d: Detection, by: list[Detection], share: float) -> bool:
        area = (d.x1 - d.x0) * (d.y1 - d.y0)
        return any(intersection(d, other, wrap_width) >= share * area for other in by)

    def name(d: Detection) -> str:
        if d.label == "motorcycle" and d.score < RIDER_SCORE and covered(d, bicycles, IN_RACK):
            return "motorcycle" if covered(d, riders, RIDDEN_OVERLAP) else "parked-bicycle"
        if d.label != "bicycle":
            return d.label
        return "bicycle" if covered(d, riders, RIDDEN_OVERLAP) else "parked-bicycle"

    return [d for d in detections if name(d) in classes]


def shifts(wrap_width: int | None) -> tuple[int, ...]:
    """The x offsets under which two boxes are compared: across the seam too on a panorama."""
    return (0,) if wrap_width is None else (0, wrap_width, -wrap_width)


def intersection(a: Detection, b: Detection, wrap_width: int | None) -> float:
    """The area two boxes share (across a panorama's seam too)."""
    h = max(0.0, min(a.y1, b.y1) - max(a.y0, b.y0))
    return max(h * max(0.0, min(a.x1, b.x1 + s) - max(a.x0, b.x0 + s)) for s in shifts(wrap_width))


