"""Desktop app pieces that need no exported model: manifest, PNG records, pictures, masks, state, settings."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from desktop.backend.base import MAX_SEED, SamplerSettings, seeds_for
from desktop.backend.errors import ModelError
from desktop.backend.locate import locate_model
from desktop.backend.manifest import parse_manifest, parse_manifest_text
from desktop.backend.runs import level_chunks
from desktop.imaging import PictureError, fit_box, fit_picture, image_grid, load_picture, to_uint8
from desktop.masks import KNOWN, UNKNOWN, MaskHistory, full_mask, overlay_mask, paint_stroke, preset_mask
from desktop.png_metadata import (
    METADATA_KEY,
    ImageRecord,
    MetadataError,
    parse_record,
    read_png_record,
    save_png,
)


def manifest_dict(**changes):
    data = {
        "format": "ncsn-tf-export",
        "format_version": 1,
        "name": "tiny",
        "dataset": "digits",
        "image_shape": [8, 8, 1],
        "channels": 1,
        "value_range": [0.0, 1.0],
        "num_levels": 2,
        "sigmas": [1.0, 0.01],
        "sampler": {"steps_per_level": 5, "epsilon": 2e-5, "convention": "code", "denoise": False},
        "files": {"savedmodel": "savedmodel", "onnx": {"sample_levels": "onnx/sample_levels.onnx"}},
        "verification": {"tolerance": 1e-4},
    }
    data.update(changes)
    return data


RECORD = ImageRecord("sample", "tiny", "digits", 12345, 7, 3e-5, True, "onnxruntime")


# ----------------------------------------------------------------------------- manifest


def test_manifest_facts_parsed():
    manifest = parse_manifest(manifest_dict(), "m.json")
    assert manifest.image_shape == (8, 8, 1)
    assert manifest.num_levels == 2 and manifest.sigmas == (1.0, 0.01)
    assert manifest.sampler.steps_per_level == 5 and manifest.sampler.epsilon == 2e-5
    assert manifest.tolerance == 1e-4


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"format": "something-else"}, "not an ncsn-tf export"),
        ({"format_version": 3}, "newer"),  # 2 is the current version (export_format.layout)
        ({"image_shape": [2]}, "points"),
        ({"image_shape": [8, 8]}, "image_shape"),
        ({"image_shape": [8, 8, 4]}, "1 or 3 channels"),
        ({"sigmas": []}, "empty"),
        ({"num_levels": 3}, "num_levels"),
        ({"sampler": {"steps_per_level": True, "epsilon": 1e-5, "denoise": False}}, "steps_per_level"),
        ({"sampler": {"steps_per_level": 5, "epsilon": "1e-5", "denoise": False}}, "epsilon"),
    ],
)
def test_manifest_rejects_bad_values(changes, words):
    with pytest.raises(ModelError, match=words):
        parse_manifest(manifest_dict(**changes), "m.json")


def test_manifest_text_is_json_only():
    with pytest.raises(ModelError, match="not valid JSON"):
        parse_manifest_text("__import__('os').system('true')", "m.json")


def test_locate_refuses_manifest_paths_leaving_the_folder(tmp_path):
    data = manifest_dict(files={"onnx": {"sample_levels": "../../etc/x.onnx"}})
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ModelError, match="outside the export folder"):  # the gate's wording (export_format.safety)
        locate_model(tmp_path)


def test_locate_errors_name_the_problem(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        locate_model(tmp_path / "missing.onnx")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ModelError, match="not a model"):
        locate_model(tmp_path / "notes.txt")
    with pytest.raises(ModelError, match="neither an export folder"):
        locate_model(tmp_path)
    (tmp_path / "manifest.json").write_text("{broken")
    with pytest.raises(ModelError, match="not valid JSON"):
        locate_model(tmp_path)


# ----------------------------------------------------------------------------- sampler helpers


def test_seeds_are_consecutive_and_wrap():
    np.testing.assert_array_equal(seeds_for(5, 3), [5, 6, 7])
    np.testing.assert_array_equal(seeds_for(MAX_SEED, 2), [MAX_SEED, 0])
    assert seeds_for(0, 4).dtype == np.int32


def test_level_chunks_cover_all_levels_once():
    assert level_chunks(5, 2) == [(0, 2), (2, 4), (4, 5)]
    assert level_chunks(3) == [(0, 1), (1, 2), (2, 3)]
    with pytest.raises(ValueError):
        level_chunks(0)


def test_sampler_settings_validate():
    SamplerSettings(1, 1e-5, False).validate()
    with pytest.raises(ValueError, match="steps per level"):
        SamplerSettings(0, 1e-5, False).validate()
    with pytest.raises(ValueError, match="epsilon"):
        SamplerSettings(1, float("nan"), False).validate()


# ----------------------------------------------------------------------------- PNG records


def test_png_record_round_trip(tmp_path):
    image = np.linspace(0, 1, 8 * 8 * 3, dtype=np.float32).reshape(8, 8, 3)
    path = tmp_path / "x.png"
    save_png(path, image, RECORD)
    assert read_png_record(path) == RECORD
    with Image.open(path) as saved:
        np.testing.assert_array_equal(np.asarray(saved), to_uint8(image))
        assert "seed 12345" in saved.text["Description"]


def _png_with_text(path, text):
    info = PngImagePlugin.PngInfo()
    info.add_text(METADATA_KEY, text)
    Image.new("L", (4, 4)).save(path, pnginfo=info)


@pytest.mark.parametrize(
    "change, words",
    [
        ({"seed": "1"}, "seed"),
        ({"seed": True}, "seed"),
        ({"seed": -1}, "seed"),
        ({"steps_per_level": 0}, "steps_per_level"),
        ({"epsilon": 2.0}, "epsilon"),
        ({"denoise": 1}, "denoise"),
        ({"mode": "exec"}, "mode"),
        ({"format": "other"}, "format"),
        ({"version": 9}, "version"),
        ({"model": ["a"]}, "model"),
    ],
)
def test_png_record_rejects_wrong_types(tmp_path, change, words):
    data = json.loads(RECORD.to_json())
    data.update(change)
    path = tmp_path / "bad.png"
    _png_with_text(path, json.dumps(data))
    with pytest.raises(MetadataError, match=words):
        read_png_record(path)


def test_png_record_is_never_evaluated(tmp_path):
    marker = tmp_path / "pwned"
    payloads = [
        f"__import__('pathlib').Path({str(marker)!r}).touch()",
        '{"format": "ncsn-desktop-image", "version": 1, "seed": NaN}',
        "[1, 2, 3]",
        "x" * 100_000,
    ]
    for payload in payloads:
        with pytest.raises(MetadataError):
            parse_record(payload)
    assert not marker.exists()


def test_png_record_unknown_keys_ignored_and_missing_chunk_reported(tmp_path):
    data = json.loads(RECORD.to_json())
    data["extra"] = {"anything": 1}
    assert parse_record(json.dumps(data)) == RECORD
    plain = tmp_path / "plain.png"
    Image.new("RGB", (4, 4)).save(plain)
    with pytest.raises(MetadataError, match="no ncsn-desktop settings"):
        read_png_record(plain)
    jpeg = tmp_path / "photo.jpg"
    Image.new("RGB", (4, 4)).save(jpeg)
    with pytest.raises(MetadataError, match="not a PNG"):
        read_png_record(jpeg)


# ----------------------------------------------------------------------------- pictures


def test_fit_box_closed_forms():
    assert fit_box((200, 100), (8, 8), "crop") == (50.0, 0.0, 150.0, 100.0)
    assert fit_box((100, 200), (8, 8), "crop") == (0.0, 50.0, 100.0, 150.0)
    assert fit_box((200, 100), (8, 8), "pad") == (0.0, -50.0, 200.0, 150.0)
    assert fit_box((200, 100), (8, 8), "stretch") == (0.0, 0.0, 200.0, 100.0)


def test_fit_picture_crops_centre_and_converts_channels(tmp_path):
    # 30x10 RGB picture: red | green | blue thirds; a centre crop keeps only green.
    pixels = np.zeros((10, 30, 3), np.uint8)
    pixels[:, :10, 0] = 255
    pixels[:, 10:20, 1] = 255
    pixels[:, 20:, 2] = 255
    path = tmp_path / "thirds.bmp"
    Image.fromarray(pixels).save(path)
    fitted = fit_picture(load_picture(path).image, (4, 4, 3), "crop")
    assert fitted.image.shape == (4, 4, 3) and fitted.box == (10.0, 0.0, 20.0, 10.0)
    np.testing.assert_allclose(fitted.image, np.broadcast_to([0, 1, 0], (4, 4, 3)), atol=1 / 255)
    grey = fit_picture(load_picture(path).image, (4, 4, 1), "crop")
    assert grey.image.shape == (4, 4, 1)
    np.testing.assert_allclose(grey.image, 150 / 255, atol=2 / 255)  # ITU-R 601 luma of pure green
    padded = fit_picture(load_picture(path).image, (6, 6, 3), "pad")
    assert padded.image.shape == (6, 6, 3)
    assert padded.image[0].max() < 0.02 and padded.image[-1].max() < 0.02  # black bars above and below
    assert padded.image[2:4, 2:4, 1].min() > 0.8  # green in the middle


def test_load_picture_errors(tmp_path):
    with pytest.raises(PictureError, match="not found"):
        load_picture(tmp_path / "none.png")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(PictureError, match="cannot read"):
        load_picture(broken)
    gif = tmp_path / "anim.gif"
    Image.new("RGB", (4, 4)).save(gif)
    with pytest.raises(PictureError, match="GIF"):
        load_picture(gif)


def test_image_grid_layout():
    images = np.stack([np.full((2, 3, 1), k / 4, np.float32) for k in range(5)])
    grid = image_grid(images, columns=3, padding=1, pad_value=1.0)
    assert grid.shape == (2 * 3 + 1, 3 * 4 + 1, 1)
    np.testing.assert_array_equal(grid[4:6, 5:8, 0], np.full((2, 3), 4 / 4))  # image 4 = row 1, column 1
    assert grid[0].min() == 1.0


# ----------------------------------------------------------------------------- masks


def test_presets_fill_in_the_named_region():
    right = preset_mask("right half", 4, 6)
    np.testing.assert_array_equal(right[:, :3], 1.0)
    np.testing.assert_array_equal(right[:, 3:], 0.0)
    top = preset_mask("top half", 4, 4)
    assert top[:2].max() == 0.0 and top[2:].min() == 1.0
    centre = preset_mask("centre square", 8, 8)
    assert centre.sum() == 64 - 16 and centre[2:6, 2:6].max() == 0.0
    random_a, random_b = preset_mask("random pixels", 16, 16, seed=3), preset_mask("random pixels", 16, 16, seed=3)
    np.testing.assert_array_equal(random_a, random_b)
    assert 0.3 < random_a.mean() < 0.7
    with pytest.raises(ValueError, match="unknown mask preset"):
        preset_mask("spiral", 4, 4)


def test_brush_stroke_paints_a_line_and_eraser_restores():
    mask = full_mask(5, 5)
    painted = paint_stroke(mask, (0.5, 2.5), (4.5, 2.5), 1, UNKNOWN)
    np.testing.assert_array_equal(painted[2], 0.0)
    assert painted.sum() == 20  # only the middle row
    assert mask.sum() == 25  # input untouched
    erased = paint_stroke(painted, (2.5, 2.5), (2.5, 2.5), 1, KNOWN)
    assert erased[2, 2] == 1.0 and erased.sum() == 21
    big = paint_stroke(mask, (2.5, 2.5), (2.5, 2.5), 3, UNKNOWN)
    assert big.sum() == 25 - 9  # a disc of diameter 3 covers the 3x3 centres within radius 1.5


def test_mask_history_undo_redo():
    history = MaskHistory(full_mask(2, 2))
    first = preset_mask("left half", 2, 2)
    history.push(first)
    history.push(np.zeros((2, 2), np.float32))
    assert history.undo() and np.array_equal(history.current, first)
    assert history.undo() and history.current.min() == 1.0
    assert not history.undo()
    assert history.redo() and np.array_equal(history.current, first)
    history.push(full_mask(2, 2))
    assert not history.can_redo
    with pytest.raises(ValueError):
        history.current[0, 0] = 0  # read-only view


def test_overlay_marks_only_unknown_pixels():
    image = np.full((2, 2, 1), 0.5, np.float32)
    mask = np.array([[1, 0], [1, 1]], np.float32)
    shown = overlay_mask(image, mask)
    assert shown.shape == (2, 2, 3)
    np.testing.assert_array_equal(shown[0, 0], [0.5, 0.5, 0.5])
    assert not np.allclose(shown[0, 1], 0.5)


# ----------------------------------------------------------------------------- state and settings


def test_state_validates_and_signals_once(qtbot):
    from desktop.state import AppState

    state = AppState()
    with qtbot.waitSignal(state.sampler_changed, timeout=1000):
        state.update_sampler(seed=7, steps_per_level=3)
    assert state.sampler.seed == 7
    fired = []
    state.sampler_changed.connect(lambda: fired.append(1))
    state.update_sampler(seed=7)  # unchanged -> no signal
    assert fired == []
    for bad in ({"seed": -1}, {"batch_size": 0}, {"epsilon": 0.0}, {"denoise": "yes"}, {"seed_mode": "x"}, {"nope": 1}):
        with pytest.raises(ValueError):
            state.update_sampler(**bad)
    assert state.sampler.seed == 7


def test_settings_round_trip_and_bad_values_skipped(tmp_path):
    from PySide6.QtCore import QSettings

    from desktop.settings import load_state, save_state
    from desktop.state import AppState

    path = str(tmp_path / "settings.ini")
    state = AppState()
    state.update_sampler(batch_size=9, seed=44, seed_mode="random", steps_per_level=12, epsilon=3e-4, denoise=True)
    state.update_inpaint(brush_size=5, fit_mode="pad")
    state.set_runtime("tensorflow", "CPUExecutionProvider")
    state.set_recent(["/a/model.onnx", "/b/export"])
    state.set_save_scale(5)
    written = QSettings(path, QSettings.Format.IniFormat)
    save_state(written, state)
    written.sync()

    restored = AppState()
    load_state(QSettings(path, QSettings.Format.IniFormat), restored)
    assert restored.sampler == state.sampler
    assert (restored.inpaint.brush_size, restored.inpaint.fit_mode) == (5, "pad")
    assert (restored.preferred_runtime, restored.provider) == ("tensorflow", "CPUExecutionProvider")
    assert restored.recent_models == ["/a/model.onnx", "/b/export"]
    assert restored.save_scale == 5

    edited = QSettings(path, QSettings.Format.IniFormat)
    edited.setValue("sampler/seed", "not a number")
    edited.setValue("sampler/epsilon", "5.0")
    edited.setValue("runtime/preferred", "magic")
    edited.sync()
    fresh = AppState()
    load_state(QSettings(path, QSettings.Format.IniFormat), fresh)
    assert fresh.sampler.seed == 0 and fresh.sampler.epsilon == 2e-5  # defaults kept
    assert fresh.preferred_runtime == "onnxruntime"
    assert fresh.sampler.batch_size == 9


def test_crc_of_png_chunks_untouched(tmp_path):
    """The text chunks we write are standard tEXt chunks other tools can read."""
    path = tmp_path / "r.png"
    save_png(path, np.zeros((2, 2, 1), np.float32), RECORD)
    data = path.read_bytes()
    index = data.index(b"tEXt")
    length = int.from_bytes(data[index - 4 : index], "big")
    body = data[index : index + 4 + length]
    assert int.from_bytes(data[index + 4 + length : index + 8 + length], "big") == zlib.crc32(body)


# ----------------------------------------------------------------------------- saving


def test_upscale_is_nearest_neighbour_and_auto_scale_reaches_256():
    from desktop.imaging import auto_save_scale, upscale

    image = np.arange(6, dtype=np.float32).reshape(2, 3, 1) / 5  # [2, 3, 1]
    big = upscale(image, 4)
    assert big.shape == (8, 12, 1)
    np.testing.assert_array_equal(big[::4, ::4], image)
    np.testing.assert_array_equal(big[3, 11], image[0, 2])  # each pixel a 4 x 4 block
    assert [auto_save_scale(s, s) for s in (8, 28, 32, 64, 256, 1024)] == [32, 10, 8, 4, 1, 1]
    assert auto_save_scale(8, 300) == 32  # the shorter side decides
    with pytest.raises(ValueError, match="scale"):
        upscale(image, 0)


def test_saved_png_is_enlarged_and_keeps_its_record(tmp_path):
    image = np.random.default_rng(0).random((8, 8, 3)).astype(np.float32)
    save_png(tmp_path / "x.png", image, RECORD, scale=32)
    with Image.open(tmp_path / "x.png") as saved:
        assert saved.size == (256, 256)
        np.testing.assert_array_equal(np.asarray(saved)[::32, ::32], to_uint8(image))
    assert read_png_record(tmp_path / "x.png") == RECORD


def test_png_record_of_a_grid_and_of_a_variation_round_trip(tmp_path):
    from dataclasses import replace

    grid = replace(RECORD, count=16)
    variation = replace(RECORD, mode="variation", start_level=5)
    assert parse_record(grid.to_json()) == grid and parse_record(variation.to_json()) == variation
    old = json.loads(RECORD.to_json())
    for key in ("sampler", "start_level", "count"):
        del old[key]  # records written before these fields existed still read
    assert parse_record(json.dumps(old)) == RECORD
    for change, words in (
        ({"count": 0}, "count"),
        ({"start_level": -1}, "start_level"),
        ({"sampler": "magic"}, "sampler"),
    ):
        with pytest.raises(MetadataError, match=words):
            parse_record(json.dumps({**json.loads(RECORD.to_json()), **change}))


# ----------------------------------------------------------------------------- estimates


def test_network_calls_and_estimates_from_measured_times():
    from desktop.estimate import CallTimes, format_duration
    from desktop.samplers import network_calls

    assert network_calls("annealed_langevin", 10, 100, False) == 1000
    assert network_calls("annealed_langevin", 10, 100, True, first_level=5) == 501
    with pytest.raises(ValueError, match="sampler"):
        network_calls("ode", 10, 100, False)
    times = CallTimes()
    assert times.estimate("m", 16, 1000) is None  # never measured: no number is made up
    times.record("m", 16, calls=100, seconds=2.0)  # 20 ms per call at batch 16
    assert times.estimate("m", 16, 1000).seconds == pytest.approx(20.0) and times.estimate("m", 16, 1000).measured
    scaled = times.estimate("m", 32, 1000)
    assert scaled.seconds == pytest.approx(40.0) and not scaled.measured  # proportional to the batch, marked rough
    times.record("m", 16, calls=100, seconds=4.0)
    assert times.estimate("m", 16, 100).seconds == pytest.approx(3.0)  # smoothed
    again = CallTimes.from_json(times.to_json())
    assert again.estimate("m", 16, 100).seconds == pytest.approx(3.0)
    for bad in ("[" * 100 + "]" * 100, '{"m": {"16": -1}}', '{"m": {"x": 1}}', "not json", '{"m": {"16": true}}'):
        assert CallTimes.from_json(bad).estimate("m", 16, 1) is None
    assert [format_duration(s) for s in (0.042, 0.42, 2.54, 12.4, 185, 7800)] == [
        "0.04 s",
        "0.4 s",
        "2.5 s",
        "12 s",
        "3 min 05 s",
        "2 h 10 min",
    ]


# ----------------------------------------------------------------------------- history


def _entry(entry_id=None, status="finished", count=3, kind="sample", shape=(8, 8, 1)):
    from desktop.history import HistoryEntry, RunSettings, new_entry_id

    levels = 4
    return HistoryEntry(
        entry_id=entry_id or new_entry_id(),
        kind=kind,
        status=status,
        created=1.7e9,
        model="tiny",
        dataset="digits",
        model_path="/m",
        runtime="onnxruntime",
        image_shape=shape,
        seeds=tuple(range(10, 10 + count)),
        settings=RunSettings("annealed_langevin", 5, 2e-5, True),
        levels_done=levels if status == "finished" else 1,
        num_levels=levels,
        seconds=1.5,
    )


def test_history_round_trip_on_disk(tmp_path):
    from desktop.history import EntryImages, History

    rng = np.random.default_rng(0)
    history = History(tmp_path / "h")
    images = rng.random((3, 8, 8, 1)).astype(np.float32)
    first = history.add(_entry(), EntryImages(images))
    picture, mask = rng.random((8, 8, 1)).astype(np.float32), preset_mask("left half", 8, 8)
    second = history.add(_entry(kind="inpaint", status="cancelled", count=2), EntryImages(images[:2], picture, mask))
    history.add(_entry(status="cancelled"), EntryImages(None))  # cancelled before its first level
    history.close()

    reread = History(tmp_path / "h")
    assert reread.load() == ""
    assert [e.entry_id for e in reread.entries] == [e.entry_id for e in history.entries]
    assert reread.entries[0] == first and reread.entries[1] == second and not reread.entries[2].has_images
    loaded = reread.images(first.entry_id)
    np.testing.assert_array_equal(loaded.images, to_uint8(images).astype(np.float32) / 255)  # 8-bit, exactly
    inpainted = reread.images(second.entry_id)
    np.testing.assert_array_equal(inpainted.mask, mask)
    np.testing.assert_array_equal(inpainted.original, to_uint8(picture).astype(np.float32) / 255)
    assert reread.thumbnail(first.entry_id).shape[2] == 1 and reread.thumbnail(second.entry_id).shape[2] == 3
    assert reread.entries[0].records()[1].seed == 11 and reread.entries[0].records()[1].denoise


def test_history_is_bounded_in_count_and_bytes_and_deletes_what_it_drops(tmp_path, monkeypatch):
    from desktop import history as history_module
    from desktop.history import EntryImages, History

    history = History(tmp_path / "h")
    images = np.zeros((3, 8, 8, 1), np.float32)
    added = [history.add(_entry(), EntryImages(images)) for _ in range(history_module.MAX_ENTRIES + 5)]
    history.flush()
    assert len(history.entries) == history_module.MAX_ENTRIES and history.entries[0] == added[5]
    folders = {p.name for p in (tmp_path / "h").iterdir() if p.is_dir()}
    assert folders == {e.entry_id for e in history.entries}  # the dropped entries' files are gone

    monkeypatch.setattr(history_module, "MAX_PIXEL_BYTES", 100_000)  # the byte bound, small enough to test
    history.clear()
    big = _entry(count=4, shape=(64, 64, 3))  # 49,152 8-bit bytes: two fit, a third pushes the oldest out
    kept = [history.add(replace_id(big), EntryImages(np.full((4, 64, 64, 3), 0.5, np.float32))) for _ in range(3)]
    assert [e.entry_id for e in history.entries] == [e.entry_id for e in kept[1:]]
    assert history.total_pixel_bytes() <= 100_000
    assert history.images(kept[2].entry_id).images.dtype == np.float32
    assert history._images[kept[2].entry_id].images.dtype == np.uint8  # memory holds what the bound counts
    assert history.add(_entry(count=16, shape=(64, 64, 3)), EntryImages(None)) is None  # alone too large: kept out
    history.close()


def replace_id(entry):
    from dataclasses import replace

    from desktop.history import new_entry_id

    return replace(entry, entry_id=new_entry_id())


@pytest.mark.parametrize(
    "content, note",
    [
        ("{not json", "could not be read"),
        ("[" * 10_000 + "]" * 10_000, "could not be read"),
        ('{"format": "other", "version": 1, "entries": []}', "not a history"),
        ('{"format": "ncsn-desktop-history", "version": 1, "entries": 5}', "no list"),
    ],
)
def test_a_corrupt_history_index_starts_empty_and_is_kept_aside(tmp_path, content, note):
    from desktop.history import History

    folder = tmp_path / "h"
    folder.mkdir()
    (folder / "index.json").write_text(content)
    history = History(folder)
    assert note in history.load() and history.entries == []
    assert (folder / "index.json.corrupt").read_text() == content  # not overwritten: kept for inspection


def test_hostile_history_entries_are_dropped_one_by_one(tmp_path):
    from desktop.history import HISTORY_FORMAT, HISTORY_VERSION, EntryImages, History

    folder = tmp_path / "h"
    good = History(folder)
    kept = good.add(_entry(), EntryImages(np.full((3, 8, 8, 1), 0.5, np.float32)))
    good.close()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep me")
    raw = kept.to_dict()
    hostile = [
        {**raw, "id": "../outside"},  # a path instead of an id
        {**raw, "id": "20250101T000000-0000000g"},
        {**raw, "image_shape": [100_000, 100_000, 1]},
        {**raw, "seeds": [-1]},
        {**raw, "seeds": list(range(5000))},
        {**raw, "settings": {**raw["settings"], "epsilon": float("nan")}},
        {**raw, "settings": {**raw["settings"], "sampler": "__import__('os')"}},
        {**raw, "model": "x" * 10_000},
        {**raw, "status": "finished", "levels_done": 1},
        "not an object",
        raw,  # a duplicate of the good one
    ]
    index = {"format": HISTORY_FORMAT, "version": HISTORY_VERSION, "entries": [raw, *hostile]}
    (folder / "index.json").write_text(json.dumps(index))
    (folder / "20250101T000000-deadbeef").symlink_to(outside)  # a symlinked entry folder
    symlinked = {**raw, "id": "20250101T000000-deadbeef"}
    index["entries"].append(symlinked)
    (folder / "index.json").write_text(json.dumps(index))
    history = History(folder)
    assert history.load() == f"{len(hostile)} damaged history entries were skipped."
    assert [e.entry_id for e in history.entries] == [kept.entry_id, symlinked["id"]]
    assert history.images(symlinked["id"]) is None  # never read through a symlink
    history.clear()
    history.close()
    assert (outside / "precious.txt").read_text() == "keep me"  # and never deleted through one


def test_history_pictures_must_be_what_the_index_says(tmp_path):
    from desktop.history import EntryImages, History

    history = History(tmp_path / "h")
    entry = history.add(_entry(), EntryImages(np.zeros((3, 8, 8, 1), np.float32)))
    history.close()
    images = tmp_path / "h" / entry.entry_id / "images.png"
    assert _reloaded(tmp_path / "h").images(entry.entry_id) is not None
    Image.new("RGB", (16, 16)).save(images)  # the right size (2 x 2 tiles of 8 x 8), the wrong mode
    assert _reloaded(tmp_path / "h").images(entry.entry_id) is None
    Image.new("L", (4000, 4000)).save(images)  # the wrong size (never decoded)
    reread = History(tmp_path / "h")
    reread.load()
    assert reread.images(entry.entry_id) is None and reread.get(entry.entry_id) is not None  # settings stay usable


def _reloaded(folder):
    from desktop.history import History

    history = History(folder)
    assert history.load() == ""
    return history
