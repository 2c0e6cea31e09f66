"""The dataset object: layout and names, artifact round trips, state files and their one policy."""

from __future__ import annotations

import numpy as np
import pytest

from scanvan_sfm.dataset import AppliedReport, Dataset, Ledger, Manifest, Region, ViewEntry
from scanvan_sfm.errors import InputError


def test_names_follow_the_original_layout(tmp_path):
    dataset = Dataset(tmp_path)
    assert dataset.probmap("sub/a", "vehicles") == tmp_path / "anonymization/segmentation/sub/a-probmap-vehicle.png"
    assert dataset.mask("a") == tmp_path / "anonymization/masks/a-mask.png"
    assert dataset.mask_layer("a", "manual") == tmp_path / "anonymization/masks/a-manual.png"
    assert dataset.blurred("a", ".jpg") == tmp_path / "anonymization/blur/a.jpg"
    assert Dataset.key("../../images/01.jpg") == "images/01" and Dataset.key("/abs/x.png") == "abs/x"


def test_masks_layers_and_probmaps_round_trip(tmp_path):
    dataset = Dataset(tmp_path)
    rng = np.random.default_rng(1)
    mask = rng.random((40, 80)) > 0.5
    dataset.save_mask("v", mask)
    assert np.array_equal(dataset.load_mask("v"), mask)
    dataset.save_layers("v", {"manual": mask, "excess": ~mask})
    layers = dataset.load_layers("v", ["manual", "excess", "automatic"])
    assert set(layers) == {"manual", "excess"} and np.array_equal(layers["excess"], ~mask)
    dataset.keep_automatic("v", mask, layers)
    assert dataset.mask_layer("v", "automatic").is_file()
    dataset.keep_automatic("v", mask, {})  # no layers: a kept automatic mask is stale
    assert not dataset.mask_layer("v", "automatic").exists()
    maps = {"people": rng.integers(0, 256, (10, 20), np.uint8), "vehicles": rng.integers(0, 256, (10, 20), np.uint8)}
    dataset.save_segmentation("v", maps, {"detections": []})
    assert all(np.array_equal(dataset.load_probmaps("v")[c], maps[c]) for c in maps)
    with pytest.raises(InputError, match="mask not found"):
        dataset.load_mask("other")


def test_state_files_round_trip_and_refuse_what_they_cannot_read(tmp_path):
    dataset = Dataset(tmp_path)
    assert dataset.load_manifest() == Manifest() and dataset.load_ledger() == Ledger()
    manifest = Manifest(views={"10": ViewEntry(source="b.jpg"), "2": ViewEntry(source="a.jpg")})
    dataset.save_manifest(manifest)
    assert list(dataset.load_manifest().views) == ["2", "10"]  # sorted by view id
    report = AppliedReport(category="blur_missing", view_id=2, polygon=[[1.0, 2.0]], run="r", layer="manual",
                           regions=[Region(view_id=2, kind="report", angles=[[1.0, 2.0]])])
    dataset.save_ledger(Ledger(reports={"feed-1": report}))
    assert dataset.load_ledger().reports["feed-1"].regions_in(2)[0].angles == [[1.0, 2.0]]
    common = [b"{", b"[]"]
    bad_manifests = [*common, b'{"views": 3}', b'{"views": {"abc": {"source": "a.jpg"}}}',
                     b'{"views": {"1": {"source": "a.jpg", "status": "done", "outputs": {"mask": "m.png"}}}}']
    bad_ledgers = [*common, b'{"reports": 3}', b'{"reports": {"report-abc": {}}}',
                   b'{"reports": {"feed-1": {"category": "blur_missing", "view_id": 1, "polygon": [], "run": "r", '
                   b'"regions": [], "layer": "bogus"}}}']
    for path, load, bad in ((dataset.manifest_path, dataset.load_manifest, bad_manifests),
                            (dataset.ledger_path, dataset.load_ledger, bad_ledgers)):
        for content in bad:
            path.write_bytes(content)
            with pytest.raises(InputError) as error:
                load()
            assert str(path) in str(error.value) and "\n" not in str(error.value), content


def test_audit_is_appended_whole(tmp_path):
    dataset = Dataset(tmp_path)
    dataset.append_audit([{"a": 1}])
    dataset.append_audit([{"b": 2}, {"c": 3}])
    assert dataset.audit_path.read_bytes().splitlines() == [b'{"a":1}', b'{"b":2}', b'{"c":3}']
