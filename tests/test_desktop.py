"""The desktop app end to end, with a tiny real export built once per session (pytest-qt, offscreen)."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from desktop_helpers import STEPS, drop_files, expect_error, generate, make_window, open_model, start_and_cancel
from desktop_helpers import left as _left
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SCREENSHOTS = REPO / "build" / "screenshots"


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory) -> Path:
    """A real export (exporter's `export_model`): 8x8x1 digits, 2 levels, exact mixture scores."""
    from benchmarks.desktop_startup import build_tiny_export

    return build_tiny_export(tmp_path_factory.mktemp("desktop_export"))


@pytest.fixture
def settings_file(tmp_path) -> str:
    return str(tmp_path / "settings.ini")


@pytest.fixture
def window(qtbot, settings_file):
    main_window = make_window(qtbot, settings_file)
    yield main_window
    main_window.controller.shutdown()


# ----------------------------------------------------------------------------- sampling


def test_open_shows_facts_and_fixed_seed_gives_identical_images(qtbot, window, tiny_export):
    open_model(qtbot, window, tiny_export)
    manifest = window.state.manifest
    panel = window.model_panel
    assert panel.name.text() == manifest.name
    assert panel.image.text().startswith(f"{manifest.width} \u00d7 {manifest.height}")
    assert panel.levels.text().startswith(str(manifest.num_levels))
    assert window.state.backend.runtime == "onnxruntime"
    assert window.state.sampler.steps_per_level == manifest.sampler.steps_per_level  # defaults from the manifest

    progress, previews = [], []
    window.state.progress_changed.connect(lambda done, total: progress.append((done, total)) if done else None)
    window.state.results_changed.connect(
        lambda kind: previews.append(1) if not window.state.results[kind].complete else None
    )
    first = generate(qtbot, window, seed=5, seed_mode="fixed", batch_size=4, steps_per_level=STEPS)
    levels = manifest.num_levels
    assert progress == [(k, levels) for k in range(1, levels + 1)]  # one progress signal per chunk (level)
    assert len(previews) == levels - 1  # a live preview after every chunk but the last
    second = generate(qtbot, window)
    assert first.shape == (4, *manifest.image_shape)
    np.testing.assert_array_equal(first, second)
    assert window.state.sampler.seed == 5  # fixed mode keeps the seed

    third = generate(qtbot, window, seed_mode="increment")
    assert window.state.sampler.seed == 9
    np.testing.assert_array_equal(third, first)  # the run itself still used seed 5...
    fourth = generate(qtbot, window)
    assert not np.array_equal(fourth, first)  # ...the next one 9..12
    alone = generate(qtbot, window, seed=6, seed_mode="fixed", batch_size=1)[0]  # image 1 of the first batch
    np.testing.assert_allclose(alone, first[1], atol=_stated_tolerance(manifest, first), rtol=0)  # (a few ulps)


def test_cancel_mid_run_stops_and_reenables_controls(qtbot, window, tiny_export):
    open_model(qtbot, window, tiny_export)
    window.state.update_sampler(steps_per_level=100_000, batch_size=4, seed_mode="fixed")  # minutes if not cancelled
    qtbot.mouseClick(window.sample_panel.generate_button, _left())
    assert window.state.busy == "sample"
    assert not window.sample_panel.generate_button.isEnabled() and window.cancel_button.isVisible()
    qtbot.wait(300)
    with qtbot.waitSignal(window.controller.run_cancelled, timeout=30_000):
        qtbot.mouseClick(window.cancel_button, _left())
    assert window.state.busy == ""
    assert window.sample_panel.generate_button.isEnabled() and not window.cancel_button.isVisible()
    assert window.sampler_panel.steps.isEnabled()
    images = generate(qtbot, window, steps_per_level=STEPS)  # usable again
    assert np.isfinite(images).all()


def test_save_png_then_drop_it_back_restores_the_settings(qtbot, window, tiny_export, tmp_path):
    open_model(qtbot, window, tiny_export)
    images = generate(
        qtbot, window, seed=11, seed_mode="fixed", batch_size=3, steps_per_level=STEPS, epsilon=3e-5, denoise=True
    )
    written = window.controller.save_results("sample", tmp_path / "out")
    assert [p.name for p in written] == [f"digits_mixture_sample_seed{seed}.png" for seed in (11, 12, 13)]
    scale = 32  # automatic enlargement: 8 x 8 -> 256 x 256, nearest neighbour
    with Image.open(written[1]) as saved:
        pixels = np.asarray(saved)
        assert pixels.shape[:2] == (images.shape[1] * scale, images.shape[2] * scale)
        np.testing.assert_array_equal(pixels[::scale, ::scale], np.round(np.clip(images[1, :, :, 0], 0, 1) * 255))

    window.state.update_sampler(seed=999, seed_mode="random", steps_per_level=STEPS + 4, epsilon=1e-3, denoise=False)
    window.state.set_result(None, "sample")
    with qtbot.waitSignal(window.state.results_changed, timeout=30_000):
        drop_files(qtbot, window, [written[1]])
    shown = window.state.results["sample"]  # the dropped picture is shown, back at the model's size
    assert "Dropped" in shown.caption and shown.records[0].seed == 12
    np.testing.assert_array_equal(shown.images[0], np.round(np.clip(images[1], 0, 1) * 255) / 255)
    sampler = window.state.sampler
    assert (sampler.seed, sampler.seed_mode, sampler.steps_per_level, sampler.denoise) == (12, "fixed", STEPS, True)
    assert sampler.epsilon == pytest.approx(3e-5)
    assert window.sampler_panel.seed.value() == 12 and window.sampler_panel.denoise.isChecked()  # widgets follow
    again = generate(qtbot, window, batch_size=1)
    with Image.open(written[1]) as saved:  # the same image (8-bit; batch size moves floats by a few ulps)
        difference = np.asarray(saved)[::scale, ::scale].astype(int) - np.round(np.clip(again[0, :, :, 0], 0, 1) * 255)
        assert np.abs(difference).max() <= 1


def test_click_enlarges_and_copy_puts_an_image_on_the_clipboard(qtbot, window, tiny_export):
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication

    open_model(qtbot, window, tiny_export)
    generate(qtbot, window, seed=1, batch_size=4, steps_per_level=STEPS)
    grid = window.sample_panel.grid
    qtbot.mouseClick(grid, _left(), pos=grid.cell_rect(2).center())
    viewer = window.sample_panel.results.viewer
    assert viewer is not None and viewer.isVisible() and "seed 3" in viewer.windowTitle()
    qtbot.mouseClick(viewer.next_button, _left())  # previous / next step through the grid
    assert "seed 4" in viewer.windowTitle() and not viewer.next_button.isEnabled()
    qtbot.keyClick(viewer, Qt.Key.Key_Left)
    qtbot.keyClick(viewer, Qt.Key.Key_Left)
    assert "seed 2" in viewer.windowTitle() and viewer.caption.text().startswith("ncsn sample")
    viewer.close()
    qtbot.mouseClick(window.sample_panel.results.copy_button, _left())
    copied = QGuiApplication.clipboard().image()
    assert not copied.isNull() and copied.width() >= 256


# ----------------------------------------------------------------------------- history, estimates, actions


def test_history_keeps_finished_and_cancelled_runs_and_brings_them_back(qtbot, tiny_export, settings_file):
    """generate -> cancel: the first grid is still in the history, restores its images and settings, after a restart too."""
    window = make_window(qtbot, settings_file)
    open_model(qtbot, window, tiny_export)
    first = generate(qtbot, window, seed=40, seed_mode="increment", batch_size=6, steps_per_level=STEPS, denoise=True)
    assert window.state.sampler.seed == 46
    start_and_cancel(qtbot, window, steps_per_level=100_000, batch_size=3, denoise=False)
    shown = window.state.results["sample"]
    np.testing.assert_array_equal(shown.images, first)  # the cancelled run does not replace the finished grid
    entries = list(window.state.history.entries)
    assert [entry.status for entry in entries] == ["finished", "cancelled"]
    assert entries[0].seeds == tuple(range(40, 46)) and entries[1].seeds == (46, 47, 48)
    strip = window.history_strip
    assert strip.entry_ids() == [entries[1].entry_id, entries[0].entry_id]  # newest first
    assert "cancelled" in entries[1].label() and "CANCELLED" in entries[1].describe()

    window.state.update_sampler(seed=999, seed_mode="random", steps_per_level=7, batch_size=2, epsilon=1e-3)
    window.state.set_result(None, "sample")
    qtbot.mouseClick(strip.cells, _left(), pos=strip.cell_rect(1).center())  # the older entry: the first grid
    sampler = window.state.sampler
    assert (sampler.seed, sampler.seed_mode, sampler.batch_size, sampler.steps_per_level, sampler.denoise) == (
        40,
        "fixed",
        6,
        STEPS,
        True,
    )
    assert sampler.epsilon == pytest.approx(window.state.manifest.sampler.epsilon)
    restored = window.state.results["sample"]
    assert restored.complete and "From the history" in restored.caption
    np.testing.assert_array_equal(restored.images, np.round(np.clip(first, 0, 1) * 255) / 255)  # 8-bit, as saved
    again = generate(qtbot, window)  # the restored settings reproduce the grid
    np.testing.assert_allclose(again, first, atol=1e-5)
    window.history_strip.grab().save(str(_screenshots() / "history_strip.png"))
    window.close()

    reopened = make_window(qtbot, settings_file)  # the history was written to disk and is read back
    assert [entry.entry_id for entry in reopened.state.history.entries] == [entry.entry_id for entry in entries] + [
        window.state.history.entries[-1].entry_id
    ]
    assert reopened.controller.restore_history(entries[0].entry_id)
    np.testing.assert_array_equal(reopened.state.results["sample"].images, restored.images)
    assert reopened.state.sampler.batch_size == 6
    reopened.close()


def _screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


def test_estimate_before_generate_and_progress_during_the_run(qtbot, window, tiny_export):
    open_model(qtbot, window, tiny_export)
    manifest = window.state.manifest
    window.state.update_sampler(batch_size=4, steps_per_level=STEPS, denoise=True)
    calls = manifest.num_levels * STEPS + 1
    text = window.sample_panel.estimate.text()
    assert text.startswith(f"{calls} network calls per image ({manifest.num_levels} levels \u00d7 {STEPS} steps + 1)")
    assert "roughly" in text  # only the one-image probe of the opening is known so far
    generate(qtbot, window)
    assert "about" in window.sample_panel.estimate.text()  # this batch size is measured now
    timings = []
    window.state.timing_changed.connect(lambda: timings.append(window.timing_label.text()))
    window.state.update_sampler(steps_per_level=100_000)
    qtbot.mouseClick(window.sample_panel.generate_button, _left())
    qtbot.waitUntil(lambda: any("network calls" in t for t in timings), timeout=10_000)
    assert any(f"/ {manifest.num_levels * 100_000 + 1:,} network calls" in t and "left" in t for t in timings), timings
    with qtbot.waitSignal(window.controller.run_cancelled, timeout=120_000):
        window.controller.cancel()


def test_right_click_seed_variations_and_inpaint_this(qtbot, window, tiny_export):
    open_model(qtbot, window, tiny_export)
    images = generate(qtbot, window, seed=3, seed_mode="increment", batch_size=4, steps_per_level=STEPS)
    grid, results = window.sample_panel.grid, window.sample_panel.results
    results.show_menu(2, grid.mapToGlobal(grid.cell_rect(2).center()))
    texts = [action.text() for action in results.menu.actions() if action.text()]
    assert texts[:4] == ["Enlarge", "Use seed 5 and its settings", "Variations (4)", "Inpaint this"]
    assert "unrelated" in results.menu.actions()[2].toolTip()  # says what variations are, and are not

    assert window.controller.use_seed("sample", 2)
    assert (window.state.sampler.seed, window.state.sampler.seed_mode) == (5, "fixed")
    alone = generate(qtbot, window, batch_size=1)[0]
    np.testing.assert_allclose(alone, images[2], atol=1e-5)  # Generate makes that image first

    generate(qtbot, window, batch_size=4, seed=3)
    with qtbot.waitSignal(window.controller.run_finished, timeout=120_000):
        assert window.controller.variations("sample", 1)
    result = window.state.results["sample"]
    source = images[1]
    assert result.kind == "variation" and result.records[0].start_level == window.state.manifest.num_levels // 2
    np.testing.assert_array_equal(result.original, source)
    assert window.sample_panel.grid.image_count() == 1 + len(result.images)  # the source first
    near = np.abs(result.images - source).mean()
    fresh = np.abs(images[[0, 2, 3]] - source).mean()
    assert near < fresh / 2  # variations keep the image's shape; other seeds are other images
    assert len({variation.tobytes() for variation in result.images}) == len(result.images)  # and differ

    assert window.controller.inpaint_this("sample", 0)
    assert window.current_tab() == "inpaint"
    np.testing.assert_allclose(window.state.inpaint.fitted.image, result.images[0], atol=0.5 / 255)


def test_saves_are_enlarged_and_named_alike_and_the_grid_is_one_png(qtbot, window, tiny_export, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    from desktop.png_metadata import read_png_record

    open_model(qtbot, window, tiny_export)
    images = generate(qtbot, window, seed=20, seed_mode="fixed", batch_size=5, steps_per_level=STEPS)
    window.state.set_save_scale(3)
    (one,) = window.controller.save_results("sample", tmp_path / "three")[:1]
    with Image.open(one) as saved:
        assert saved.size == (8 * 3, 8 * 3)
    window.state.set_save_scale(0)  # automatic: the shorter side reaches 256 px
    written = window.controller.save_results("sample", tmp_path / "auto")
    with Image.open(written[0]) as saved:
        assert saved.size == (256, 256)

    asked = []

    def save_file_name(parent, title, start, name_filter):
        asked.append(start)
        return str(tmp_path / "grid.png"), ""

    monkeypatch.setattr(QFileDialog, "getSaveFileName", save_file_name)
    window.sample_panel.results.save_one_dialog(0)
    assert Path(asked[0]).name == written[0].name == "digits_mixture_sample_seed20.png"  # viewer and batch agree
    window.sample_panel.results.save_grid_dialog()
    assert Path(asked[1]).name == "digits_mixture_sample_grid_seeds20-24.png"
    with Image.open(tmp_path / "grid.png") as grid:
        columns, rows = 3, 2  # near-square grid of 5, 1 model pixel of white between images
        assert grid.size == ((columns * 9 + 1) * 32, (rows * 9 + 1) * 32)
        pixels = np.asarray(grid)
        np.testing.assert_array_equal(pixels[32::32, 32::32][:8, :8], np.round(np.clip(images[0, :, :, 0], 0, 1) * 255))
    record = read_png_record(tmp_path / "grid.png")
    assert (record.seed, record.count) == (20, 5)
    window.state.update_sampler(batch_size=1, seed=0)
    with qtbot.waitSignal(window.state.results_changed, timeout=30_000):
        drop_files(qtbot, window, [tmp_path / "grid.png"])
    assert (window.state.sampler.seed, window.state.sampler.batch_size) == (20, 5)  # the whole grid comes back


# ----------------------------------------------------------------------------- layout


def _digit_picture(path: Path, index: int = 42, zoom: int = 12) -> Path:
    """One of scikit-learn's 8 x 8 digits (not one of the mixture's 20 centres), enlarged to a 96 x 96 PNG."""
    from sklearn.datasets import load_digits

    digit = load_digits().images[index] / 16.0  # [8, 8] in [0, 1]
    pixels = np.round(np.kron(digit, np.ones((zoom, zoom))) * 255).astype(np.uint8)
    Image.fromarray(pixels, mode="L").save(path)
    return path


def _overlaps(root) -> list[str]:
    """Pairs of visible sibling widgets that intersect, and visible children poking out of their parent."""
    from PySide6.QtWidgets import QScrollArea, QWidget

    problems = []
    for parent in [root, *root.findChildren(QWidget)]:
        if not parent.isVisible() or parent.isWindow() and parent is not root:
            continue
        children = [c for c in parent.children() if isinstance(c, QWidget) and c.isVisible() and not c.isWindow()]
        for index, first in enumerate(children):
            for second in children[index + 1 :]:
                if first.geometry().intersects(second.geometry()):
                    problems.append(
                        f"{type(first).__name__} {first.geometry()} overlaps {type(second).__name__} {second.geometry()} in {type(parent).__name__}"
                    )
            inner = parent.rect()
            scrolled = (
                isinstance(parent.parent(), QScrollArea)
                or type(parent).__name__ == "QWidget"
                and parent.objectName() == "qt_scrollarea_viewport"
            )
            if not scrolled and not inner.contains(first.geometry()):
                problems.append(f"{type(first).__name__} {first.geometry()} leaves {type(parent).__name__} {inner}")
    return problems


def test_nothing_overlaps_at_800_by_600(qtbot, window, tiny_export, tmp_path):
    open_model(qtbot, window, tiny_export)
    window.resize(800, 600)
    generate(qtbot, window, seed=0, seed_mode="increment", batch_size=16, steps_per_level=STEPS)
    generate(qtbot, window, batch_size=4)
    start_and_cancel(qtbot, window, steps_per_level=100_000, batch_size=9)
    window.tabs.setCurrentWidget(window.inpaint_panel)
    with qtbot.waitSignal(window.controller.picture_loaded, timeout=30_000):
        window.controller.open_picture(_digit_picture(tmp_path / "digit.png"))
    window.inpaint_panel.apply_preset("right half")
    window.state.update_sampler(variants=3, steps_per_level=STEPS)
    with qtbot.waitSignal(window.controller.run_finished, timeout=120_000):
        window.controller.inpaint()
    for sampler in ("predictor_corrector", "probability_flow", "annealed_langevin"):  # each with its own rows
        _choose(qtbot, window, sampler)
        for tab in (window.inpaint_panel, window.sample_panel):
            window.tabs.setCurrentWidget(tab)
            qtbot.wait(50)
            assert (window.width(), window.height()) == (800, 600), "the window cannot shrink to 800 x 600"
            assert _overlaps(window) == [], (sampler, window.current_tab())
            if sampler == "annealed_langevin":
                window.grab().save(str(_screenshots() / f"desktop_800x600_{window.current_tab()}.png"))
    from PySide6.QtCore import QRect

    from desktop.widgets.history_strip import CELL_WIDTH

    strip = window.history_strip
    assert len(strip.entry_ids()) == 4
    width = min(strip.width(), 12 + 4 * CELL_WIDTH)
    strip.grab(QRect(0, 0, width, strip.height())).save(str(_screenshots() / "desktop_history.png"))


# ----------------------------------------------------------------------------- samplers

SAMPLER_CASES = (  # (sampler, its settings): cheap runs of every sampler the exporter writes
    ("annealed_langevin", {"steps_per_level": STEPS, "denoise": True}),
    ("predictor_corrector", {"corrector_steps": 1, "snr": 0.16}),
    ("probability_flow", {"order": 1}),
    ("probability_flow", {"order": 2}),
)


def _choose(qtbot, window, sampler: str) -> None:
    """Pick `sampler` in the panel's method list, as a user does."""
    method = window.sampler_panel.method
    index = method.findData(sampler)
    method.setCurrentIndex(index)
    method.activated.emit(index)
    assert window.state.sampler.sampler == sampler


def test_every_sampler_generates_seeded_images_and_shows_its_cost(qtbot, window, tiny_export):
    from export_format.settings import network_calls

    open_model(qtbot, window, tiny_export)
    state, panel, manifest = window.state, window.sampler_panel, window.state.manifest
    assert state.available_samplers == tuple(manifest.sampler.samplers) and len(state.available_samplers) == 3
    assert state.sampler.sampler == manifest.sampler.default  # the export's default sampler is chosen
    assert state.sampler.settings("predictor_corrector") == manifest.sampler.defaults("predictor_corrector")
    assert panel.method.isEnabled()
    own_rows = {
        "annealed_langevin": (panel.steps, panel.epsilon, panel.denoise),
        "predictor_corrector": (panel.corrector_steps, panel.snr),
        "probability_flow": (panel.order,),
    }
    images = {}
    for sampler, values in SAMPLER_CASES:
        _choose(qtbot, window, sampler)
        state.update_sampler(**values)
        for owner, rows in own_rows.items():  # only the chosen sampler's settings are shown
            assert all(panel.form.isRowVisible(row) == (owner == sampler) for row in rows), (sampler, owner)
        settings = state.sampler.settings()
        calls = network_calls(sampler, manifest.num_levels, settings.for_role("sample"))
        assert panel.cost.text().startswith(f"{calls} network call")  # the one counting rule, shown live
        assert window.sample_panel.estimate.text().startswith(panel.cost.text())
        first = generate(qtbot, window, seed=5, seed_mode="fixed", batch_size=3)
        assert first.shape == (3, *manifest.image_shape) and np.isfinite(first).all()
        assert len({image.tobytes() for image in first}) == 3  # three seeds, three images
        np.testing.assert_array_equal(generate(qtbot, window), first)  # same seed, same images
        alone = generate(qtbot, window, seed=6, batch_size=1)[0]
        np.testing.assert_allclose(alone, first[1], atol=_stated_tolerance(manifest, first), rtol=0)  # per-image seeds
        record = state.results["sample"].records[0]
        assert record.settings == settings and state.history.entries[-1].settings.sampler_settings == settings
        assert (
            sampler.split("_")[0] in window.status_label.text().lower() or "done" in window.status_label.text().lower()
        )
        images[(sampler, values.get("order"))] = first
    assert not np.array_equal(images[("probability_flow", 1)], images[("probability_flow", 2)])  # Euler is not Heun
    assert not np.array_equal(images[("annealed_langevin", None)], images[("predictor_corrector", None)])


def test_switching_samplers_keeps_each_ones_settings(qtbot, window, tiny_export):
    open_model(qtbot, window, tiny_export)
    state, panel = window.state, window.sampler_panel
    _choose(qtbot, window, "annealed_langevin")
    panel.steps.setValue(7)
    _choose(qtbot, window, "predictor_corrector")
    panel.corrector_steps.setValue(3)
    panel.snr.setValue(0.25)
    _choose(qtbot, window, "probability_flow")
    panel.order.setCurrentIndex(panel.order.findData(1))
    panel.order.activated.emit(panel.order.currentIndex())
    _choose(qtbot, window, "predictor_corrector")
    assert (panel.corrector_steps.value(), panel.snr.value()) == (3, 0.25)
    assert (state.sampler.corrector_steps, state.sampler.snr) == (3, 0.25)
    _choose(qtbot, window, "annealed_langevin")
    assert panel.steps.value() == 7 and state.sampler.steps_per_level == 7 and state.sampler.order == 1
    qtbot.mouseClick(panel.defaults, _left())  # every sampler back to the manifest's defaults; the method stays
    assert state.sampler.sampler == "annealed_langevin"
    assert state.sampler.per_sampler == {
        name: state.manifest.sampler.defaults(name) for name in state.available_samplers
    }


def test_the_sampler_round_trips_through_png_and_history(qtbot, window, tiny_export, tmp_path):
    open_model(qtbot, window, tiny_export)
    state = window.state
    state.update_sampler(sampler="predictor_corrector", corrector_steps=1, snr=0.3)
    images = generate(qtbot, window, seed=30, seed_mode="fixed", batch_size=2)
    written = window.controller.save_results("sample", tmp_path / "out")
    entry = state.history.entries[-1]
    state.update_sampler(sampler="probability_flow", corrector_steps=2, snr=0.6, seed=1)
    state.set_result(None, "sample")
    with qtbot.waitSignal(state.results_changed, timeout=30_000):
        drop_files(qtbot, window, [written[1]])
    assert (state.sampler.sampler, state.sampler.corrector_steps, state.sampler.snr, state.sampler.seed) == (
        "predictor_corrector", 1, 0.3, 31,
    )  # fmt: skip
    assert "predictor\u2013corrector, 1 corrector step, signal-to-noise 0.3" in window.status_label.text()
    again = generate(qtbot, window, batch_size=1)
    with Image.open(written[1]) as saved:
        difference = np.asarray(saved)[::32, ::32].astype(int) - np.round(np.clip(again[0, :, :, 0], 0, 1) * 255)
        assert np.abs(difference).max() <= 1  # the dropped PNG's sampler remade its image
    state.update_sampler(sampler="annealed_langevin", snr=0.9)
    assert window.controller.restore_history(entry.entry_id)
    assert (state.sampler.sampler, state.sampler.corrector_steps, state.sampler.snr) == ("predictor_corrector", 1, 0.3)
    np.testing.assert_array_equal(state.results["sample"].images, np.round(np.clip(images, 0, 1) * 255) / 255)


def test_inpainting_and_variations_use_the_chosen_sampler(qtbot, window, tiny_export, tmp_path):
    from export_format.settings import network_calls

    open_model(qtbot, window, tiny_export)
    state, manifest, panel = window.state, window.state.manifest, window.inpaint_panel
    window.tabs.setCurrentWidget(panel)
    with qtbot.waitSignal(window.controller.picture_loaded, timeout=30_000):
        drop_files(qtbot, window, [_digit_picture(tmp_path / "digit.png")])
    panel.apply_preset("right half")
    _choose(qtbot, window, "probability_flow")
    assert not panel.resample_steps.isVisible()  # RePaint's resampling belongs to predictor-corrector
    _choose(qtbot, window, "predictor_corrector")
    assert panel.resample_steps.isVisible()
    state.update_sampler(corrector_steps=1, snr=0.16, variants=2, seed=8, seed_mode="fixed")
    panel.resample_steps.setValue(2)
    calls = network_calls("predictor_corrector", manifest.num_levels, state.sampler.settings(), inpainting=True)
    assert calls == 2 * 2 + 1 * 2 * 2 and panel.estimate.text().startswith(f"{calls} network calls per image")
    assert window.sampler_panel.cost.text().startswith("4 network calls")  # sampling has no resampling
    with qtbot.waitSignal(window.controller.run_finished, timeout=120_000):
        qtbot.mouseClick(panel.inpaint_button, _left())
    result = state.results["inpaint"]
    known = np.array(state.mask, bool)
    for variant in result.images:
        assert np.isfinite(variant).all()
        np.testing.assert_array_equal(variant[known], state.inpaint.fitted.image[known])
    assert result.records[0].settings.resample_steps == 2 and "resampling 2" in result.records[0].describe()

    _choose(qtbot, window, "probability_flow")  # variations: re-noised to the middle level, then the flow
    images = generate(qtbot, window, seed=3, batch_size=2)
    with qtbot.waitSignal(window.controller.run_finished, timeout=120_000):
        assert window.controller.variations("sample", 0)
    varied = state.results["sample"]
    assert varied.kind == "variation" and varied.records[0].settings.sampler == "probability_flow"
    assert np.isfinite(varied.images).all() and not np.array_equal(varied.images[0], varied.images[1])
    assert np.abs(varied.images - images[0]).mean() < np.abs(images[1] - images[0]).mean()


def _old_export(tiny_export: Path, target: Path) -> Path:
    """A copy of the export as one written before the sampler choice: annealed Langevin only."""
    from export_format.settings import SAMPLERS

    shutil.copytree(tiny_export, target)
    manifest = json.loads((target / "manifest.json").read_text())
    manifest["sampler"]["settings"] = {"annealed_langevin": manifest["sampler"]["settings"]["annealed_langevin"]}
    theirs = set(SAMPLERS["annealed_langevin"].endpoints.values()) | {"score"}
    manifest["files"]["onnx"] = {k: v for k, v in manifest["files"]["onnx"].items() if k in theirs}
    manifest["endpoints"] = {k: v for k, v in manifest["endpoints"].items() if k in theirs}
    (target / "manifest.json").write_text(json.dumps(manifest))
    return target


def test_an_old_export_offers_annealed_langevin_only(qtbot, window, tiny_export, tmp_path):
    old = _old_export(tiny_export, tmp_path / "old")
    open_model(qtbot, window, tiny_export)
    window.state.update_sampler(sampler="probability_flow", order=1, seed=2, seed_mode="fixed", batch_size=1)
    generate(qtbot, window)
    flow_png = window.controller.save_results("sample", tmp_path / "flow")[0]
    open_model(qtbot, window, old)
    state, panel = window.state, window.sampler_panel
    assert state.available_samplers == ("annealed_langevin",) and state.sampler.sampler == "annealed_langevin"
    assert not panel.method.isEnabled() and "Re-export" in panel.method.toolTip()
    assert not panel.method.model().item(panel.method.findData("predictor_corrector")).isEnabled()
    with pytest.raises(ValueError, match="not exported with predictor"):
        state.update_sampler(sampler="predictor_corrector")
    assert np.isfinite(generate(qtbot, window, steps_per_level=STEPS)).all()
    statuses = []
    window.controller.status.connect(statuses.append)
    drop_files(qtbot, window, [flow_png])  # a PNG of another sampler: its seed, and the sampler stays
    assert state.sampler.sampler == "annealed_langevin" and state.sampler.seed == 2
    assert any("probability flow, which the open model does not have" in text for text in statuses), statuses


# ----------------------------------------------------------------------------- inpainting


def _picture(path: Path, height: int, width: int) -> Path:
    ys, xs = np.mgrid[0:height, 0:width]
    pixels = ((xs + ys) % 2 * 200 + 30).astype(np.uint8)  # a checkerboard, far from the model's samples
    Image.fromarray(pixels, mode="L").save(path)
    return path


def test_inpaint_keeps_known_pixels_and_undo_restores_the_mask(qtbot, window, tiny_export, tmp_path):
    open_model(qtbot, window, tiny_export)
    manifest = window.state.manifest
    window.tabs.setCurrentWidget(window.inpaint_panel)
    with qtbot.waitSignal(window.controller.picture_loaded, timeout=30_000):
        drop_files(qtbot, window, [_picture(tmp_path / "checker.png", manifest.height, manifest.width)])
    fitted = window.state.inpaint.fitted
    assert fitted is not None and fitted.image.shape == manifest.image_shape

    panel, canvas = window.inpaint_panel, window.inpaint_panel.canvas
    qtbot.wait(20)
    window.state.update_inpaint(brush_size=1)
    qtbot.mouseClick(canvas, _left(), pos=canvas.widget_point(1.5, 2.5).toPoint())  # paint pixel (row 2, col 1)
    brushed = np.array(window.state.mask)
    assert brushed[2, 1] == 0.0 and brushed.sum() == brushed.size - 1
    panel.apply_preset("right half")
    preset = np.array(window.state.mask)
    assert preset[:, manifest.width // 2 :].max() == 0.0
    qtbot.mouseClick(panel.undo_button, _left())
    np.testing.assert_array_equal(window.state.mask, brushed)
    qtbot.mouseClick(panel.redo_button, _left())
    np.testing.assert_array_equal(window.state.mask, preset)

    window.state.update_sampler(variants=3, steps_per_level=STEPS, seed=4, seed_mode="fixed")
    with qtbot.waitSignal(window.controller.run_finished, timeout=120_000):
        qtbot.mouseClick(panel.inpaint_button, _left())
    result = window.state.results["inpaint"]
    assert result.images.shape == (3, *manifest.image_shape)
    known = preset.astype(bool)
    for variant in result.images:
        np.testing.assert_array_equal(variant[known], fitted.image[known])
    assert not np.array_equal(result.images[0][~known], result.images[1][~known])  # variants differ
    assert panel.results.grid.image_count() == 4  # the original beside the variants
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(SCREENSHOTS / "inpaint.png"))

    # The exported chain itself: known pixels carry the last level's noise, and are exactly y after denoising.
    from desktop.backend.base import SamplerSettings

    backend = window.state.backend
    seeds = np.array([4, 5], np.int32)
    masks = np.broadcast_to(preset[None, :, :, None], (2, *manifest.image_shape)).astype(np.float32)
    knowns = np.broadcast_to(fitted.image, (2, *manifest.image_shape)).astype(np.float32)
    for denoise in (False, True):
        settings = SamplerSettings(STEPS, manifest.sampler.epsilon, denoise)
        start = backend.initial_images(seeds)
        raw = backend.inpaint_levels(start, knowns, masks, seeds, 0, manifest.num_levels, settings)
        offsets = np.abs(raw - knowns)[masks == 1]
        if denoise:
            np.testing.assert_array_equal(offsets, 0.0)
        else:
            assert 0 < offsets.max() < 6 * manifest.sigmas[-1]


# ----------------------------------------------------------------------------- errors


def _failing_export(tiny_export: Path, out: Path, any_batch: bool = True) -> Path:
    """A copy of the export whose sample_levels.onnx fails at run time: a Reshape of the images.

    any_batch: reshape to [-1, 7], which fails on every batch (the app refuses the model when opening
    it: its probe run fails); else reshape to [1, H, W, C], which passes the one-image probe and
    fails on batches of two or more.
    """
    import onnx
    from onnx import TensorProto, helper

    shutil.copytree(tiny_export, out, ignore=shutil.ignore_patterns("savedmodel"))
    manifest = json.loads((out / "manifest.json").read_text())
    height, width, channels = manifest["image_shape"]
    image = [-1, height, width, channels]
    inputs = [
        helper.make_tensor_value_info("images", TensorProto.FLOAT, image),
        helper.make_tensor_value_info("seeds", TensorProto.INT32, [-1]),
        helper.make_tensor_value_info("first_level", TensorProto.INT32, []),
        helper.make_tensor_value_info("last_level", TensorProto.INT32, []),
        helper.make_tensor_value_info("steps_per_level", TensorProto.INT32, []),
        helper.make_tensor_value_info("epsilon", TensorProto.FLOAT, []),
        helper.make_tensor_value_info("denoise", TensorProto.BOOL, []),
    ]
    target = [-1, 7] if any_batch else [1, height, width, channels]
    shape = helper.make_tensor("bad_shape", TensorProto.INT64, [len(target)], target)
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["images", "bad_shape"], ["images_out"])],
        "fails",  # output named as the contract says (the runner fetches images_out)
        inputs,
        [helper.make_tensor_value_info("images_out", TensorProto.FLOAT, None)],
        initializer=[shape],
    )
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=9),
        out / manifest["files"]["onnx"]["sample_levels"],
    )
    return out


def test_errors_show_a_dialog_and_leave_the_app_usable(qtbot, window, tiny_export, tmp_path):
    controller = window.controller
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(os.urandom(4096))
    expect_error(qtbot, window, lambda: controller.open_model(corrupt), "cannot")
    no_manifest = tmp_path / "plain_savedmodel"
    shutil.copytree(tiny_export / "savedmodel", no_manifest)
    (no_manifest / "assets" / "manifest.json").unlink(missing_ok=True)
    expect_error(qtbot, window, lambda: controller.open_model(no_manifest), "no manifest")
    expect_error(qtbot, window, lambda: controller.open_model(tmp_path / "missing"), "not found")
    notes = tmp_path / "notes.txt"
    notes.write_text("not a model")
    expect_error(qtbot, window, lambda: drop_files(qtbot, window, [notes]), "neither a model")
    assert window.state.backend is None and not window.state.loading

    open_model(qtbot, window, tiny_export)
    unreadable = tmp_path / "broken.png"
    unreadable.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(300))
    expect_error(qtbot, window, lambda: drop_files(qtbot, window, [unreadable]), "cannot read")
    expect_error(qtbot, window, lambda: controller.open_model(corrupt), "cannot")
    assert window.state.backend is not None  # the open model survives a failed open

    title = window.windowTitle()
    expect_error(
        qtbot, window, lambda: controller.open_model(_failing_export(tiny_export, tmp_path / "broken")), "does not run"
    )
    assert window.state.backend is not None and window.windowTitle() == title  # checked before the switch

    open_model(qtbot, window, _failing_export(tiny_export, tmp_path / "failing", any_batch=False))
    window.state.update_sampler(batch_size=2, steps_per_level=STEPS)
    with qtbot.waitSignal(controller.run_failed, timeout=60_000):
        qtbot.mouseClick(window.sample_panel.generate_button, _left())
    assert window.last_error[0] == "Sampling failed" and "onnxruntime" in window.last_error[1]
    assert window.state.busy == "" and window.sample_panel.generate_button.isEnabled()

    open_model(qtbot, window, tiny_export)
    assert np.isfinite(generate(qtbot, window, steps_per_level=STEPS)).all()


# ----------------------------------------------------------------------------- runtimes


def _stated_tolerance(manifest, reference: np.ndarray) -> float:
    """The exporter's tolerance, scaled as its manifest says: tolerance * max(1, max |output|)."""
    return (manifest.tolerance or 1e-4) * max(1.0, float(np.abs(reference).max()))


def test_both_runtimes_give_the_same_images(qtbot, window, tiny_export):
    from desktop.backend import SamplerSettings, open_backend

    open_model(qtbot, window, tiny_export)
    manifest = window.state.manifest
    onnx_images = generate(qtbot, window, seed=21, seed_mode="fixed", batch_size=3, steps_per_level=STEPS, denoise=True)
    panel = window.model_panel
    with qtbot.waitSignal(window.controller.model_loaded, timeout=120_000):
        panel.runtime.setCurrentIndex(panel.runtime.findData("tensorflow"))
        panel.runtime.activated.emit(panel.runtime.currentIndex())
    assert window.state.backend.runtime == "tensorflow" and panel.runtime.currentData() == "tensorflow"
    assert window.state.sampler.seed == 21 and window.state.sampler.denoise  # settings kept across runtimes
    tf_images = generate(qtbot, window)
    np.testing.assert_allclose(tf_images, onnx_images, atol=_stated_tolerance(manifest, tf_images), rtol=0)

    # The raw (unclipped) chains of both endpoints the app drives, against each other.
    tf_backend, onnx_backend = window.state.backend, open_backend(tiny_export, "onnxruntime")
    settings = SamplerSettings(STEPS, manifest.sampler.epsilon, False)
    seeds = np.array([3, 4], np.int32)
    picture = np.random.default_rng(0).random((2, *manifest.image_shape)).astype(np.float32)
    masks = np.ones_like(picture)
    masks[:, :, : manifest.width // 2] = 0
    # TensorFlow chained over [0, k) + [k, L) against onnxruntime over [0, L): runtimes and chunking agree.
    start = tf_backend.initial_images(seeds)
    np.testing.assert_array_equal(start, onnx_backend.initial_images(seeds))  # integer noise: bit-exact
    half = manifest.num_levels // 2
    chained = tf_backend.sample_levels(start, seeds, 0, half, settings)
    chained = tf_backend.sample_levels(chained, seeds, half, manifest.num_levels, settings)
    whole = onnx_backend.sample_levels(start, seeds, 0, manifest.num_levels, settings)
    np.testing.assert_allclose(chained, whole, atol=_stated_tolerance(manifest, whole), rtol=0)
    inpainted = [
        backend.inpaint_levels(start, picture, masks, seeds, 0, manifest.num_levels, settings)
        for backend in (tf_backend, onnx_backend)
    ]
    np.testing.assert_allclose(inpainted[0], inpainted[1], atol=_stated_tolerance(manifest, inpainted[1]), rtol=0)


def test_onnx_path_never_imports_tensorflow_and_desktop_never_imports_the_library(tiny_export):
    script = f"""
import sys
from desktop.app import create_window
from desktop.backend import SamplerSettings, open_backend, seeds_for
from desktop.backend.runs import iter_sample
import desktop.controller, desktop.settings, desktop.workers, desktop.widgets.main_window
backend = open_backend({str(tiny_export)!r}, "onnxruntime")
images = list(iter_sample(backend, seeds_for(0, 2), SamplerSettings(2, 2e-5, False)))[-1].images
app, window = create_window([{str(tiny_export)!r}, "--settings-file", {str(tiny_export.parent / "sub.ini")!r}])
while window.state.loading:
    app.processEvents()
assert window.state.backend.runtime == "onnxruntime" and images.shape[0] == 2
window.close()
assert "tensorflow" not in sys.modules, "the onnxruntime path imported TensorFlow"
import desktop.backend.tf_backend
backend = open_backend({str(tiny_export)!r}, "tensorflow")
bad = sorted(m for m in sys.modules if m.split(".")[0] in ("ncsn_tf", "export"))
assert not bad, bad
print("OK")
"""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0 and "OK" in done.stdout, done.stderr[-3000:]


def test_import_layers_point_one_way():
    """desktop never imports ncsn_tf/export; desktop.backend never imports Qt (checked on the source)."""
    for path in (REPO / "desktop").rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top not in ("ncsn_tf", "export"), f"{path} imports {name}"
                if "backend" in path.parts:
                    assert top != "PySide6", f"{path} imports Qt ({name})"


# ----------------------------------------------------------------------------- persistence and screenshot


def test_settings_persist_and_the_last_model_reopens(qtbot, tiny_export, settings_file):
    from desktop.app import create_window

    _, first = create_window([str(tiny_export), "--settings-file", settings_file])
    qtbot.addWidget(first)
    qtbot.waitSignal(first.controller.model_loaded, timeout=60_000).wait()
    first.state.update_sampler(seed=77, steps_per_level=STEPS + 1, seed_mode="random", batch_size=5)
    first.tabs.setCurrentWidget(first.inpaint_panel)
    first.close()

    _, second = create_window(["--settings-file", settings_file])
    qtbot.addWidget(second)
    with qtbot.waitSignal(second.controller.model_loaded, timeout=60_000):
        pass
    sampler = second.state.sampler
    assert (sampler.seed, sampler.steps_per_level, sampler.seed_mode, sampler.batch_size) == (
        77,
        STEPS + 1,
        "random",
        5,
    )
    assert second.state.model_path == str(tiny_export)
    assert second.state.recent_models[0] == str(tiny_export)
    assert second.current_tab() == "inpaint"
    assert len(second.settings.value("window/geometry")) > 0  # (offscreen clamps sizes to its 800x600 screen)
    second.close()


def _cells(shot, grid, count: int) -> list[np.ndarray]:
    """The pixels of each grid cell in a screenshot of `grid` ([h, w, 3] uint8 each)."""
    pixels = np.asarray(shot.convert("RGB"))
    ratio = shot.width / grid.width()  # the device pixel ratio of the grab
    cells = []
    for index in range(count):
        rect = grid.cell_rect(index)
        top, left = round(rect.top() * ratio), round(rect.left() * ratio)
        cells.append(pixels[top : top + round(rect.height() * ratio), left : left + round(rect.width() * ratio)])
    return cells


def test_screenshot_of_the_main_window_after_sampling(qtbot, window, tiny_export):
    """The grid shows exactly the 16 samples, each cell the sample itself (not blank, not another image)."""
    open_model(qtbot, window, tiny_export)
    manifest = window.state.manifest
    images = generate(
        qtbot, window, seed=0, seed_mode="increment", batch_size=16, steps_per_level=manifest.sampler.steps_per_level
    )
    # A short session for the picture: a cancelled run and a small batch in the history, then the grid back.
    start_and_cancel(qtbot, window, steps_per_level=100_000, batch_size=9)
    generate(qtbot, window, batch_size=4, steps_per_level=manifest.sampler.steps_per_level)
    window.controller.restore_history(window.state.history.entries[0].entry_id)
    assert window.state.sampler.sampler == "annealed_langevin"  # (the fast samplers need more than 2 levels)
    images = window.state.results["sample"].images
    qtbot.wait(50)
    assert window.grab().save(str(_screenshots() / "main_window.png"))
    grid = window.sample_panel.grid
    assert grid.image_count() == 16
    path = SCREENSHOTS / "grid.png"
    assert grid.grab().save(str(path))
    with Image.open(path) as shot:
        cells = _cells(shot, grid, 16)
        rects = [grid.cell_rect(k) for k in range(16)]
        assert all(not a.intersects(b) for i, a in enumerate(rects) for b in rects[i + 1 :])  # 16 separate cells
        for cell, image in zip(cells, images, strict=True):
            grey = cell.astype(float).mean(axis=2)  # [h, w]
            assert grey.std() > 20  # a picture, not a blank cell
            zoom = cell.shape[0] / manifest.height  # whole-pixel zoom: sample the centre of each model pixel
            centres = grey[(np.arange(manifest.height) * zoom + zoom / 2).astype(int)][
                :, (np.arange(manifest.width) * zoom + zoom / 2).astype(int)
            ]
            np.testing.assert_allclose(centres, np.round(np.clip(image[:, :, 0], 0, 1) * 255), atol=2)


def test_command_line_entry_point_answers():
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run(
        [sys.executable, "-m", "desktop", "--help"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and "ncsn-desktop" in done.stdout and "--runtime" in done.stdout
