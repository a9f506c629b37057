"""The mesh-recovery demo: its pure parts (weak-perspective fit, person boxes, texts, uploads that must be
refused, per-sample errors, loading a head, the overlay) and the streamlit app driven by AppTest over a tiny
world whose 2D joints are the exact weak-perspective projections of its bodies seen through `cam_rot`."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

import poseembroider
from intermodality_world import make_intermodality_world
from poseembroider import config
from poseembroider.datasets.cache_format import cache_file_name, load_cache, save_cache
from poseembroider.datasets.image_processing import IMAGE_HW
from poseembroider.datasets.registry import get_dataset
from poseembroider.demo_core_helpers import (
    MAX_UPLOAD_PIXELS,
    UploadError,
    check_upload,
    prepare_uploaded_image,
    read_uploaded_image,
)
from poseembroider.demos import DEMOS, build_command
from poseembroider.downstream.pose_estimation.demo_helpers import (
    IMAGE_AND_TEXT,
    IMAGE_ONLY,
    MAX_TEXT_CHARS,
    Prediction,
    body_in_camera,
    camera_view_pose,
    check_text,
    errors_table,
    fit_weak_perspective,
    load_head,
    overlay_body,
    parse_person_box,
    predict_input_sets,
    sample_errors,
)
from poseembroider.downstream.pose_estimation.model_pose_estimation import (
    HPSEstimator,
    HPSEstimatorConfig,
    representation_fingerprint,
)
from poseembroider.geometry import axis_angle_to_matrix
from poseembroider.model import PoseEmbroider
from poseembroider.models.pretrained import CheckpointError

DEMO = Path(poseembroider.__file__).parent / "downstream" / "pose_estimation" / "demo_pose_estimation.py"
WORLD = "hpsdemo"
SCALE, SHIFT = 150.0, (96.0, 130.0)
"""The weak-perspective camera that made the tiny world's 2D joints (pixels of the 256x192 crop)."""

pytestmark = pytest.mark.usefixtures("one_torch_thread", "procedural_model_file")


# ---------------------------------------------------------------------------------------------- the camera fit


def test_the_weak_perspective_fit_recovers_a_known_camera():
    generator = torch.Generator().manual_seed(0)
    points = torch.randn(22, 3, generator=generator) * 0.4
    pixels = points[:, :2] * 173.5 + torch.tensor([88.0, 140.0])
    fit = fit_weak_perspective(points, pixels)
    assert fit.scale == pytest.approx(173.5, rel=1e-6)  # float32 points
    assert fit.translation == pytest.approx((88.0, 140.0), abs=1e-4)
    assert fit.residual_px < 1e-4
    torch.testing.assert_close(fit.project(points), pixels, atol=1e-4, rtol=0)
    # a joint far off but weighted 0 changes nothing; depth (z) never matters
    moved = pixels.clone()
    moved[3] += 500
    weights = torch.ones(22)
    weights[3] = 0
    points_z = points.clone()
    points_z[:, 2] = 7.0
    again = fit_weak_perspective(points_z, moved, weights)
    assert again.scale == pytest.approx(173.5) and again.translation == pytest.approx((88.0, 140.0))


def test_the_fit_never_mirrors_a_body_and_refuses_bad_points():
    points = torch.randn(22, 3, generator=torch.Generator().manual_seed(1))
    upside_down = -points[:, :2] * 100 + 50  # the best least-squares scale would be -100
    fit = fit_weak_perspective(points, upside_down)
    assert fit.scale == pytest.approx(100.0, rel=1e-6)  # the spreads' ratio instead
    with pytest.raises(ValueError, match=r"points_3d: expected \(J, 3\)"):
        fit_weak_perspective(points[:, :2], upside_down)
    with pytest.raises(ValueError, match=r"points_2d: expected \(22, 2\)"):
        fit_weak_perspective(points, upside_down[:5])
    with pytest.raises(ValueError, match="NaN or inf"):
        fit_weak_perspective(points, torch.full((22, 2), float("nan")))
    with pytest.raises(ValueError, match="single point"):
        fit_weak_perspective(torch.zeros(22, 3), upside_down)
    with pytest.raises(ValueError, match="non-negative"):
        fit_weak_perspective(points, upside_down, torch.zeros(22))


# ---------------------------------------------------------------------------------------------- typed inputs


def test_person_boxes_are_read_as_x_y_w_h():
    assert parse_person_box("  ") is None
    assert parse_person_box("10, 20, 30, 40").tolist() == [10, 20, 40, 60]
    assert parse_person_box("10 20.5 30 40").tolist() == [10, 20.5, 40, 60.5]
    for text, message in (
        ("1, 2, 3", "3 numbers; expected four"),
        ("a, b, c, d", "expected four numbers"),
        ("0, 0, -5, 10", "width and height must be > 0"),
        ("0, 0, nan, 10", "finite"),
    ):
        with pytest.raises(ValueError, match=message):
            parse_person_box(text)


def test_texts_are_stripped_and_megabytes_refused():
    assert check_text("  the person squats \n") == "the person squats"
    assert check_text(" ") is None and check_text(None) is None
    assert check_text("x" * MAX_TEXT_CHARS) == "x" * MAX_TEXT_CHARS
    with pytest.raises(ValueError, match=f"1,048,576 characters; at most {MAX_TEXT_CHARS:,}"):
        check_text("a" * 2**20)


# ---------------------------------------------------------------------------------------------- uploads


def _png(width: int, height: int, color=(255, 0, 0)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


def _png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header claims `width` x `height` pixels (its data is a few bytes): what a
    decompression bomb or a huge picture looks like before any pixel is decoded."""
    data = bytearray(_png(4, 4))
    ihdr = bytearray(data[16:29])  # width, height, bit depth, colour type, compression, filter, interlace
    ihdr[0:8] = struct.pack(">II", width, height)
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + bytes(ihdr)))
    return bytes(data)


def _jpeg_turned(width: int, height: int, orientation: int) -> bytes:
    """A JPEG stored `width` x `height`, left half red, right half blue, with an EXIF orientation tag."""
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[:, : width // 2] = (255, 0, 0)
    pixels[:, width // 2 :] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", exif=exif, quality=95)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the file is empty"),
        (
            b"MZ\x90\x00 this is not a picture" * 10,
            r"not a readable PNG/JPG image \(no known picture format; it starts b'MZ",
        ),
        (_png(64, 64)[:-30], "not a readable PNG/JPG image"),  # truncated: fails when decoded
        (_png_claiming(100_000, 100_000), "decompression bomb"),  # PIL's own limit
        (_png_claiming(10_000, 6_000), r"10000 x 6000 pixels \(60 megapixels\)"),  # under PIL's, over ours
        (_png(8, 200), "8 x 200 pixels is too small"),
    ],
    ids=["empty", "not-an-image", "truncated", "bomb", "huge", "tiny"],
)
def test_bad_uploads_are_refused_with_a_message_naming_the_file(data, message):
    with pytest.raises(UploadError, match=message) as err:
        prepare_uploaded_image(data, "holiday.png")
    assert str(err.value).startswith("holiday.png: ")


def test_other_formats_and_oversized_files_are_refused_before_decoding(monkeypatch):
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64)).save(buffer, format="GIF")
    with pytest.raises(UploadError, match="a GIF image; upload a PNG or a JPG"):
        check_upload(buffer.getvalue(), "anim.gif")
    assert _png_claiming(5_000, 10_000)[:8] == b"\x89PNG\r\n\x1a\n" and 5_000 * 10_000 <= MAX_UPLOAD_PIXELS
    assert check_upload(_png_claiming(5_000, 10_000), "big.png") == (5_000, 10_000)  # the header alone is read
    import poseembroider.demo_core_helpers as helpers

    monkeypatch.setattr(helpers, "MAX_UPLOAD_BYTES", 1000)
    with pytest.raises(UploadError, match="upload a picture of at most"):
        check_upload(_png(300, 300, (1, 2, 3)) + b"\0" * 2000, "heavy.png")


def test_exif_rotations_are_applied_before_the_crop():
    upright = read_uploaded_image(_jpeg_turned(80, 40, orientation=1), "upright.jpg")
    assert upright.shape == (3, 40, 80)
    turned = read_uploaded_image(_jpeg_turned(80, 40, orientation=6), "phone.jpg")  # shown turned 90° clockwise
    assert turned.shape == (3, 80, 40)
    top, bottom = turned[:, :30].float().mean((1, 2)), turned[:, -30:].float().mean((1, 2))
    assert top[0] > 200 and top[2] < 50 and bottom[2] > 200 and bottom[0] < 50  # the left half is on top


def test_a_person_box_crops_the_picture_like_the_datasets():
    pixels = np.zeros((300, 400, 3), np.uint8)
    pixels[:, 200:] = (0, 0, 255)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    data = buffer.getvalue()
    whole = prepare_uploaded_image(data, "two.png")
    boxed = prepare_uploaded_image(data, "two.png", parse_person_box("250, 20, 100, 260"))
    assert whole.shape == boxed.shape == (3, *IMAGE_HW)
    assert float(whole[2, 128, 40]) < 0.05  # the left (black) half is in the whole picture's crop
    assert float(boxed[2, 128, 96]) > 0.95 and float(boxed[2, 128, 40]) > 0.95  # the box holds blue only
    with pytest.raises(UploadError, match=r"person box \[500, 0, 600, 100\] leaves 0 x 100 pixels"):
        prepare_uploaded_image(data, "two.png", np.array([500.0, 0.0, 600.0, 100.0]))


# ---------------------------------------------------------------------------------------------- the tiny world


def _write_joints_2d(world: dict) -> None:
    """Give the val images cache camera rotations and 2D joints: each body seen through its `cam_rot`,
    projected by the weak-perspective camera (SCALE, SHIFT) into the 256x192 crop, stored in pixels of the
    90x120 picture (whose box is the whole picture: the crop is a 256/120 resize)."""
    from poseembroider.body.body_model import BodyModel

    version = world["script"].removeprefix("synthscript-")
    ids = world["ids"]["val"]
    path = config.DATA_CACHE_DIR / cache_file_name("synthscript", version, "val", "images", len(ids))
    cache = load_cache(path)
    generator = torch.Generator().manual_seed(3)
    cache["camera_transformation"] = {i: (torch.randn(3, generator=generator), torch.zeros(3)) for i in ids}
    save_cache(cache, path)
    dataset = get_dataset(world["script"], "val", item_format="ip")  # cam_rot comes with the images cache
    body = BodyModel().eval()
    joints_2d = {}
    for index in range(len(dataset)):
        item = dataset[index]
        joints, _ = body_in_camera(body, item["poses"], item["shapes"], item["cam_rot"])
        crop = joints[:, :2] * SCALE + torch.tensor(SHIFT)
        joints_2d[item["data_ids"]] = ((crop + 0.5) * (120 / 256) - 0.5).float()
    cache["joints_2d"] = joints_2d
    save_cache(cache, path)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("hps_demo")
    world = make_intermodality_world(folder, WORLD, n_train=6, n_val=4)
    _write_joints_2d(world)
    rep_dir = world["models"]["PoseEmbroider"]
    rep = PoseEmbroider.from_pretrained(rep_dir)
    torch.manual_seed(0)
    head = HPSEstimator(
        HPSEstimatorConfig(
            latentD=16,
            regressor_hidden=32,
            predict_bodyshape=True,
            pretrained_representation_model=str(rep_dir),
            representation_model_fingerprint=representation_fingerprint(rep),
        )
    )
    head.set_mean_pose(world["poses"]["train"].mean(0))
    world["head"] = str(head.save_pretrained(folder / "head"))
    return world


def test_the_items_2d_joints_are_placed_back_exactly_by_the_camera_view_and_the_fit(world, body_model):
    dataset = get_dataset(world["script"], "val", item_format="ip", keypoints_2d=True)
    for index in range(len(dataset)):
        item = dataset[index]
        joints, vertices = body_in_camera(body_model, item["poses"], item["shapes"], item["cam_rot"])
        fit = fit_weak_perspective(joints, item["joints_2d_crop"])
        assert fit.scale == pytest.approx(SCALE, rel=1e-3) and fit.translation == pytest.approx(SHIFT, abs=0.05)
        assert fit.residual_px < 0.05 and vertices.shape[1] == 3
    turned = camera_view_pose(item["poses"], item["cam_rot"])
    expected = axis_angle_to_matrix(item["cam_rot"]) @ axis_angle_to_matrix(item["poses"][0])
    torch.testing.assert_close(axis_angle_to_matrix(turned[0]), expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(turned[1:], item["poses"][1:])


def test_a_head_predicts_each_input_set_and_its_errors_follow_the_evaluation(world, body_model):
    head, head_dir = load_head(world["head"])
    assert head_dir == world["head"] and not head.training
    dataset = get_dataset(world["script"], "val", item_format="ipt", caption_selection=0)
    item = dataset[1]
    alone = predict_input_sets(head, item["images"])
    assert list(alone) == ["images"] and alone["images"].input_types == IMAGE_ONLY
    both = predict_input_sets(head, item["images"], item["raw_texts"])
    assert list(both) == ["images", "images+texts"] and both["images+texts"].input_types == IMAGE_AND_TEXT
    assert both["images+texts"].label == "image + text" and both["images"].label == "image alone"
    assert both["images"].poses.shape == (22, 3)
    assert both["images"].betas.shape == (10,)
    torch.testing.assert_close(both["images"].poses, alone["images"].poses)
    assert not torch.allclose(both["images"].poses, both["images+texts"].poses)  # the text changes x̄
    errors = sample_errors(body_model, head, both["images"], item["poses"], item["shapes"])
    assert set(errors) == {"mpjpe_mm", "pa_mpjpe_mm", "pve_mm", "rotation_error_deg"}
    assert all(value > 0 for value in errors.values()) and errors["pa_mpjpe_mm"] <= errors["mpjpe_mm"]
    exact = Prediction(IMAGE_ONLY, item["poses"], axis_angle_to_matrix(item["poses"]), item["shapes"])
    assert max(sample_errors(body_model, head, exact, item["poses"], item["shapes"]).values()) < 1e-2


def test_the_errors_table_shows_what_the_text_changes():
    errors = {
        "images": {"mpjpe_mm": 100.0, "pa_mpjpe_mm": 60.0, "pve_mm": 110.0, "rotation_error_deg": 12.0},
        "images+texts": {"mpjpe_mm": 90.0, "pa_mpjpe_mm": 61.25, "pve_mm": 100.0, "rotation_error_deg": 11.0},
    }
    table = errors_table(errors, {"images": "image alone", "images+texts": "image + text"})
    assert table["metric"] == ["MPJPE (mm)", "PA-MPJPE (mm)", "PVE (mm)", "rotation error (°)"]
    assert table["image alone"] == ["100.0", "60.0", "110.0", "12.0"]
    assert table["change with the text"] == ["-10.0", "+1.2", "-10.0", "-1.0"]
    assert set(errors_table({"images": errors["images"]}, {})) == {"metric", "images"}


def test_a_folder_without_a_head_is_refused_clearly(world, tmp_path):
    with pytest.raises(CheckpointError, match="holds a PoseEmbroider, not an HPSEstimator head"):
        load_head(str(world["models"]["PoseEmbroider"]))
    with pytest.raises(FileNotFoundError, match="no config.json there"):
        load_head(str(tmp_path))


@pytest.mark.render
def test_the_overlay_draws_the_body_where_the_fit_puts_it_and_leaves_the_rest(world, body_model):
    from poseembroider.rendering import create_renderer

    dataset = get_dataset(world["script"], "val", item_format="ip", keypoints_2d=True)
    item = dataset[0]
    joints, vertices = body_in_camera(body_model, item["poses"], item["shapes"], item["cam_rot"])
    fit = fit_weak_perspective(joints, item["joints_2d_crop"])
    crop = np.zeros((*IMAGE_HW, 3), np.uint8)
    crop[:, :, 1] = 200  # a green picture: the body is drawn over it at 70%
    with create_renderer(IMAGE_HW[1], IMAGE_HW[0]) as renderer:
        out = overlay_body(renderer, vertices, body_model.faces, fit, crop)
        sharp = overlay_body(renderer, vertices, body_model.faces, fit, crop, upscale=2)
        with pytest.raises(ValueError, match="upscale=0"):
            overlay_body(renderer, vertices, body_model.faces, fit, crop, upscale=0)
    assert out.shape == crop.shape and out.dtype == np.uint8 and sharp.shape == (2 * IMAGE_HW[0], 2 * IMAGE_HW[1], 3)
    for image, k in ((out, 1), (sharp, 2)):
        covered = (image != crop.repeat(k, 0).repeat(k, 1)).any(-1)
        u, v = ((c + 0.5) * k - 0.5 for c in fit.project(joints[0]).tolist())  # the pelvis
        assert covered[int(round(v)), int(round(u))]
        projected = (fit.project(vertices) + 0.5) * k - 0.5
        u0, v0 = projected.min(0).values.tolist()
        u1, v1 = projected.max(0).values.tolist()
        rows, cols = np.nonzero(covered)  # nothing drawn outside the projected body (perspective: ~1%)
        assert rows.min() >= v0 - 3 * k and rows.max() <= v1 + 3 * k
        assert cols.min() >= u0 - 3 * k and cols.max() <= u1 + 3 * k
        inside = min(v1, image.shape[0] - 1) - max(v0, 0)
        assert rows.max() - rows.min() > 0.9 * inside  # and the whole body is drawn, as far as the crop goes


# ---------------------------------------------------------------------------------------------- the app


def _app(world: dict, model: str | None = None) -> AppTest:
    at = AppTest.from_file(str(DEMO), default_timeout=240)
    at.query_params["model"] = model or world["head"]
    at.query_params["dataset"] = world["script"]
    return at


def test_the_demo_is_registered_and_listens_on_localhost():
    command = build_command("pose-estimation")
    assert command[4] == str(DEMO) and DEMOS["pose-estimation"].path == DEMO
    options = command[command.index("run") + 2 : command.index("--")]
    assert options[options.index("--server.address") + 1] == "localhost"
    shared = build_command("pose-estimation", ["--server.address", "0.0.0.0"])
    assert shared.count("--server.address") == 1 and "0.0.0.0" in shared  # the user's wins


@pytest.mark.render
def test_app_shows_each_input_set_beside_the_ground_truth_with_errors(world):
    at = _app(world).run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    dataset = get_dataset(world["script"], "val", item_format="ipt", caption_selection=0)
    assert at.text_area(key="input_text").value == dataset[0]["raw_texts"]  # prefilled with the caption
    headers = ("**image alone**", "**image + text**", "**ground truth**")
    assert [m.value for m in at.markdown if m.value in headers] == list(headers)
    captions = [c for image in at.image for c in image.captions]
    assert len(at.image) == 1 + 3 * 2  # the crop; per column: on the crop, from the viewpoint
    assert "as the camera saw it (2D fit: 0.0 px RMS)" in captions  # the ground truth lands on its 2D joints
    (table,) = at.table
    assert list(table.value.columns) == ["metric", "image alone", "image + text", "change with the text"]
    assert list(table.value["metric"]) == ["MPJPE (mm)", "PA-MPJPE (mm)", "PVE (mm)", "rotation error (°)"]

    at.text_area(key="input_text").input("").run()  # no text: the image alone
    assert not at.exception, at.exception
    assert list(at.table[0].value.columns) == ["metric", "image alone"] and len(at.image) == 1 + 2 * 2
    at.number_input(key="index").set_value(2).run()  # another sample: its caption comes back
    assert at.text_area(key="input_text").value == dataset[2]["raw_texts"]
    at.slider(key="mask_size").set_value(4).run()
    at.checkbox(key="camera_view").check().run()
    assert not at.exception, at.exception
    assert "occluded" in at.image[0].captions[0] and any("from the camera" in c for i in at.image for c in i.captions)


@pytest.mark.render
def test_app_runs_on_uploads_and_survives_bad_ones(world):
    at = _app(world).run()
    at.radio(key="source").set_value("an uploaded picture").run()
    assert not at.exception, at.exception
    assert any("Upload a picture" in i.value for i in at.info)
    bad = [
        ("notes.png", b"not an image at all", "not a readable PNG/JPG image"),
        ("bomb.png", _png_claiming(100_000, 100_000), "decompression bomb"),
        ("huge.png", _png_claiming(10_000, 6_000), "60 megapixels"),
        ("tiny.png", _png(10, 10), "too small"),
    ]
    for name, data, message in bad:
        at.file_uploader(key="upload").set_value((name, data, "image/png")).run()
        assert not at.exception, at.exception
        assert any(e.value.startswith(f"{name}: ") and message in e.value for e in at.error), [
            e.value for e in at.error
        ]
        assert not at.table and not at.image

    at.file_uploader(key="upload").set_value(("phone.jpg", _jpeg_turned(90, 120, 6), "image/jpeg")).run()
    assert not at.exception, at.exception
    assert not at.error and at.text_area(key="input_text").value == ""  # an upload has no caption
    assert any("has no camera" in i.value for i in at.info) and not at.table
    assert len(at.image) == 2  # the crop and the body from the front (no text: the image alone)
    at.text_area(key="input_text").input("the person squats with both knees bent").run()
    assert not at.exception, at.exception
    assert len(at.image) == 3 and "image + text, viewpoint 0°" in at.image[2].captions[0]
    at.text_input(key="box").input("10, 10, 5").run()
    assert any("3 numbers; expected four" in e.value for e in at.error) and not at.exception
    at.text_input(key="box").input("10, 10, 60, 100").run()  # the typed text survived the refused box
    assert not at.error and len(at.image) == 3
    assert at.text_area(key="input_text").value == "the person squats with both knees bent"


def test_app_reports_a_model_folder_without_a_head(world, tmp_path):
    at = _app(world, str(world["models"]["PoseEmbroider"])).run()
    assert not at.exception, at.exception
    assert any("not an HPSEstimator head" in e.value for e in at.error)
    at = _app(world, str(tmp_path / "nothing")).run()
    assert not at.exception, at.exception
    assert any("Cannot load an HPSEstimator head" in e.value for e in at.error)
