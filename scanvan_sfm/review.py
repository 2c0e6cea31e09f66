"""``anonymization/review.html``: every view of a run on one static page, for a look by eye.

One card per view: the thumbnail of its published image with the mask outlined (``review/``,
made by the view core and written with the image), its masked share, and its flags: failed (with
the reason), more than ``flag_over`` masked, nothing detected (the detector's own mask is empty).
Failed views first, then the most masked. A click opens the published image. The page links
only to files under ``anonymization/``, by relative paths, and never names an original's folder:
it opens from disk, with no server and no script.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from html import escape
from pathlib import PurePosixPath
from urllib.parse import quote

from .dataset import Dataset, Manifest, ViewEntry

#: A view more masked than this is flagged. The busiest labelled street is 18 % masked with the
#: default settings; a camera car left in the mask (no camera mask) covers about 27 % of a panorama.
FLAG_MASKED_OVER = 0.25

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; background: #f4f4f4; color: #222; }
h1 { font-size: 1.3em; margin: 0 0 .3em; }
main { display: grid; grid-template-columns: repeat(auto-fill, minmax(330px, 1fr)); gap: 12px; margin-top: 1em; }
.card { margin: 0; padding: 5px; background: #fff; border: 1px solid #ccc; }
.card.flagged { border: 2px solid #c60; }
.card img { display: block; width: 320px; max-width: 100%; height: auto; }
.missing { display: block; padding: 2em 1em; background: #eee; color: #666; text-align: center; }
.card figcaption { padding-top: 4px; overflow-wrap: anywhere; }
.flags { margin: 3px 0 0; padding: 0; list-style: none; }
.flags li { display: inline-block; margin: 2px 4px 0 0; padding: 0 5px; background: #fde2c8; color: #7a3300; }
.outline { color: #f0f; font-weight: bold; }
#flagged-only:checked ~ main .card:not(.flagged) { display: none; }
"""


@dataclass
class Card:
    """One view on the page."""

    view_id: int
    name: str                  # its output name (``Dataset.output_keys``)
    masked: float | None
    image: str | None          # the published image, relative to anonymization/
    thumbnail: str | None
    flags: dict[str, str]      # flag → what the page says

    @property
    def failed(self) -> bool:
        return "failed" in self.flags


def cards(manifest: Manifest, failures: dict[int, str] | None = None,
          flag_over: float = FLAG_MASKED_OVER) -> list[Card]:
    """The manifest's views, failed first, then by masked share (most first). ``failures``: views
    whose last update failed although an earlier image is published (``reports apply``)."""
    keys = Dataset.output_keys({int(k): e.source for k, e in manifest.views.items()})
    result = []
    for key, entry in manifest.views.items():
        view_id = int(key)
        done = entry.status == "done"
        flags = {}
        failure = (failures or {}).get(view_id) if done else entry.reason or "not processed"
        if failure:
            flags["failed"] = f"failed: {_without_sources(failure, entry, manifest.images_root)}"
        if done and entry.masked_share is not None and entry.masked_share > flag_over:
            flags["masked"] = f"more than {flag_over * 100:g} % masked"
        if done and entry.detected_share == 0:
            flags["undetected"] = "nothing detected"
        result.append(Card(view_id, keys[view_id], entry.masked_share if done else None,
                           entry.outputs.get("output") if done else None,
                           entry.outputs.get("thumbnail") if done else None, flags))
    return sorted(result, key=lambda c: (not c.failed, -(c.masked or 0.0), c.view_id))


def _without_sources(reason: str, entry: ViewEntry, images_root: str | None) -> str:
    """A failure's reason without the originals' folder (the source named by its file name): the
    page may be published with the images."""
    if entry.source_path:
        reason = reason.replace(entry.source_path, PurePosixPath(entry.source).name)
    if images_root:
        for root in sorted({os.path.abspath(images_root), images_root}, key=len, reverse=True):
            reason = reason.replace(root + os.sep, "")
    return reason


def page(manifest: Manifest, failures: dict[int, str] | None = None, flag_over: float = FLAG_MASKED_OVER) -> str:
    """The review page of the manifest's views (``cards``), every name HTML-escaped."""
    shown = cards(manifest, failures, flag_over)
    counts = {flag: sum(flag in c.flags for c in shown) for flag in ("failed", "masked", "undetected")}
    style_hash = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
    csp = f"default-src 'none'; img-src 'self' file:; style-src 'sha256-{style_hash}'"
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">',
        '<meta name="referrer" content="no-referrer">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Review of {len(shown)} anonymized views</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<header><h1>Review of {len(shown)} anonymized views</h1>",
        f'<p id="counts">{counts["failed"]} failed · {counts["masked"]} more than {flag_over * 100:g} % masked · '
        f'{counts["undetected"]} with nothing detected. Failed views first, then the most masked; the '
        '<span class="outline">magenta</span> line outlines the mask. A thumbnail opens the published image.</p>',
        "</header>",
        '<input type="checkbox" id="flagged-only"> <label for="flagged-only">flagged views only</label>',
        "<main>",
        *(_card(c) for c in shown),
        "</main></body></html>",
        "",
    ])


def _card(card: Card) -> str:
    classes = "card flagged" if card.flags else "card"
    masked = "" if card.masked is None else f"<b>{card.masked:.2%}</b> masked · "
    if card.image and card.thumbnail:
        picture = (f'<a href="{_href(card.image)}" target="_blank" rel="noopener">'
                   f'<img src="{_href(card.thumbnail)}" alt="view {card.view_id}" loading="lazy"></a>')
    elif card.image:
        picture = (f'<a class="missing" href="{_href(card.image)}" target="_blank" rel="noopener">'
                   "no thumbnail (an older run: anonymize --force makes one)</a>")
    else:
        picture = '<div class="missing">no published image</div>'
    items = "".join(f"<li>{escape(text)}</li>" for text in card.flags.values())
    flags = f'<ul class="flags">{items}</ul>' if items else ""
    share = "" if card.masked is None else card.masked
    return (f'<figure class="{classes}" id="view-{card.view_id}" data-view="{card.view_id}" data-masked="{share}" '
            f'data-flags="{" ".join(card.flags)}">{picture}'
            f"<figcaption>{masked}view {card.view_id} · {escape(card.name)}{flags}</figcaption></figure>")


def _href(path: str) -> str:
    """A path relative to anonymization/ as a link from the page beside it."""
    return escape(quote(path.replace(os.sep, "/")))
