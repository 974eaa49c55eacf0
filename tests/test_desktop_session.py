"""The desktop app around its runs: settings written as they change, one owner per settings file, models
checked before the switch, no silent runtime fallback, text from files shown as text, big pictures loaded
in the background, file dialogs that remember, and the hint when Qt's X11 plugin cannot load."""

from __future__ import annotations

import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from desktop_helpers import STEPS, drop_files, expect_error, generate, make_window, open_model
from PIL import Image, PngImagePlugin

REPO = Path(__file__).resolve().parents[1]
HOSTILE_NAME = '<h1 style="color:red;font-size:60px">BIG</h1><a href="https://example.com">link</a> & <img src=x>'


@pytest.fixture
def settings_file(tmp_path) -> Path:
    return tmp_path / "settings.ini"


@pytest.fixture
def window(qtbot, settings_file):
    main_window = make_window(qtbot, settings_file)
    yield main_window
    main_window.controller.shutdown()


def _copy_export(source: Path, target: Path, **manifest_changes) -> Path:
    shutil.copytree(source, target)
    manifest = json.loads((target / "manifest.json").read_text())
    manifest.update(manifest_changes)
    (target / "manifest.json").write_text(json.dumps(manifest))
    return target


# ----------------------------------------------------------------------------- settings


def test_settings_are_written_shortly_after_a_change_without_closing(qtbot, window, settings_file):
    from PySide6.QtCore import QSettings

    from desktop.settings import WRITE_DELAY_MS

    writes = window.store.writes
    window.sampler_panel.seed.setValue(4242)
    window.sampler_panel.steps.setValue(17)
    assert window.store.pending  # one debounced write for the burst
    qtbot.waitUntil(lambda: not window.store.pending, timeout=WRITE_DELAY_MS * 10)
    assert window.store.writes == writes + 1
    on_disk = QSettings(str(settings_file), QSettings.Format.IniFormat)  # as a crash right now would leave it
    assert (int(on_disk.value("sampler/seed")), int(on_disk.value("sampler/steps_per_level"))) == (4242, 17)


def test_a_second_instance_reads_the_settings_but_never_writes_them(qtbot, settings_file):
    from PySide6.QtCore import QSettings

    first = make_window(qtbot, settings_file)
    first.state.update_sampler(seed=11)
    first.store.write()
    second = make_window(qtbot, settings_file)
    assert first.store.writable and not second.store.writable
    assert second.read_only_label.isVisible() and "Another" in second.status_label.text()
    assert second.state.sampler.seed == 11  # it read them
    second.state.update_sampler(seed=99)
    second.store.write()
    first.state.update_sampler(batch_size=7)
    first.store.write()
    on_disk = QSettings(str(settings_file), QSettings.Format.IniFormat)
    assert (int(on_disk.value("sampler/seed")), int(on_disk.value("sampler/batch_size"))) == (11, 7)
    assert not second.state.history.writable
    second.close()
    first.close()
    third = make_window(qtbot, settings_file)  # the first closed: its lock is released
    assert third.store.writable and not third.read_only_label.isVisible()
    third.close()


def test_a_lock_left_by_a_killed_instance_is_taken_over(qtbot, settings_file):
    from desktop.settings import lock_file_for

    script = (
        "import sys, time\n"
        "from PySide6.QtCore import QLockFile\n"
        "lock = QLockFile(sys.argv[1]); lock.setStaleLockTime(0)\n"
        "assert lock.tryLock(0)\n"
        "print('locked', flush=True)\n"
        "time.sleep(60)\n"
    )
    from PySide6.QtCore import QSettings

    lock = lock_file_for(QSettings(str(settings_file), QSettings.Format.IniFormat))
    child = subprocess.Popen([sys.executable, "-c", script, lock], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "locked"
        held = make_window(qtbot, settings_file)
        assert not held.store.writable  # a live owner keeps it
        held.close()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    assert Path(lock).exists()  # the killed process could not remove its lock
    after = make_window(qtbot, settings_file)
    assert after.store.writable
    after.close()


def test_file_dialogs_start_where_the_same_dialog_ended(qtbot, window, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    pictures, models = tmp_path / "pictures", tmp_path / "models"
    pictures.mkdir()
    models.mkdir()
    started = []

    def open_file_name(parent, title, start, name_filter):
        started.append((title, start))
        return str(pictures / "x.png") if "picture" in title else str(models / "m.onnx"), ""

    monkeypatch.setattr(QFileDialog, "getOpenFileName", open_file_name)
    dialogs = window.dialogs
    assert dialogs.open_file(window, "picture", "Open picture", "*.png").endswith("x.png")
    assert dialogs.open_file(window, "model", "Open exported model", "*.onnx").endswith("m.onnx")
    dialogs.open_file(window, "picture", "Open picture", "*.png")
    dialogs.open_file(window, "model", "Open exported model", "*.onnx")
    assert started[0][1] == str(Path.home()) and started[2] == ("Open picture", str(pictures))
    assert started[3] == ("Open exported model", str(models))
    window.store.write()
    reopened = window.store.settings
    assert reopened.value("folders/picture") == str(pictures)  # remembered across restarts


# ----------------------------------------------------------------------------- opening models


def test_an_absurd_manifest_is_refused_before_the_open_model_is_closed(qtbot, window, digits_export_dir, tmp_path):
    open_model(qtbot, window, digits_export_dir)
    backend, title = window.state.backend, window.windowTitle()
    window.state.update_sampler(seed=5, steps_per_level=STEPS)
    huge = _copy_export(digits_export_dir, tmp_path / "huge", image_shape=[1_000_000, 1_000_000, 1])
    _, message = expect_error(qtbot, window, lambda: window.controller.open_model(huge), "beyond the bounds of an export")
    assert "\n" not in message
    sampler = json.loads((Path(digits_export_dir) / "manifest.json").read_text())["sampler"]
    sampler["settings"]["annealed_langevin"]["steps_per_level"] = 10**9  # levels x steps past int32
    steps = _copy_export(digits_export_dir, tmp_path / "steps", sampler=sampler)
    expect_error(qtbot, window, lambda: window.controller.open_model(steps), "steps per level")
    nested = _copy_export(digits_export_dir, tmp_path / "nested")
    (nested / "manifest.json").write_text('{"name": ' + "[" * 20_000 + "]" * 20_000 + "}")
    _, message = expect_error(qtbot, window, lambda: window.controller.open_model(nested), "")
    assert "\n" not in message  # a one-line refusal, whichever reader says it
    assert window.state.backend is backend and window.windowTitle() == title  # nothing was switched
    assert (window.state.sampler.seed, window.state.sampler.steps_per_level) == (5, STEPS)
    assert np.isfinite(generate(qtbot, window, batch_size=2)).all()  # and it still runs


@pytest.fixture(scope="module")
def savedmodel_only_export(tmp_path_factory) -> Path:
    from benchmarks.desktop_startup import build_tiny_export

    return build_tiny_export(tmp_path_factory.mktemp("savedmodel_only"), name="no_onnx", formats="savedmodel")


def test_an_export_without_onnx_files_asks_before_using_tensorflow(
    qtbot, window, digits_export_dir, savedmodel_only_export
):
    from PySide6.QtWidgets import QMessageBox

    open_model(qtbot, window, digits_export_dir)
    backend = window.state.backend
    with qtbot.waitSignal(window.question_shown, timeout=60_000) as asked:
        window.controller.open_model(savedmodel_only_export)
    assert asked.args[0] == "no_onnx has no ONNX files. Open it with TensorFlow (slower to start)?"
    assert window.state.backend is backend and not window.state.loading  # nothing opened silently
    window.question.button(QMessageBox.StandardButton.No).click()
    assert window.state.backend is backend

    with qtbot.waitSignal(window.question_shown, timeout=60_000):
        window.controller.open_model(savedmodel_only_export)
    with qtbot.waitSignal(window.controller.model_loaded, timeout=180_000):
        window.question.button(QMessageBox.StandardButton.Yes).click()
    assert window.state.backend.runtime == "tensorflow" and window.model_panel.runtime.currentData() == "tensorflow"
    assert window.state.preferred_runtime == "onnxruntime"  # this model only
    assert np.isfinite(generate(qtbot, window, batch_size=2, steps_per_level=STEPS)).all()


# ----------------------------------------------------------------------------- text from files


def _literal_everywhere(window, text: str) -> list[str]:
    """Where `text` is shown as rich text: labels not set to plain text, tooltips not escaped."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication, QLabel, QMessageBox, QWidget

    problems = []
    for widget in [window, *QApplication.topLevelWidgets()]:
        for child in [widget, *widget.findChildren(QWidget)]:
            if isinstance(child, QLabel) and "<h1" in child.text() and child.textFormat() != Qt.TextFormat.PlainText:
                problems.append(f"label {child.text()[:40]!r} is not plain text")
            if (
                isinstance(child, QMessageBox)
                and "<h1" in child.text()
                and child.textFormat() != Qt.TextFormat.PlainText
            ):
                problems.append(f"message box {child.text()[:40]!r} is not plain text")
            if "<h1" in child.toolTip():
                problems.append(f"tooltip of {type(child).__name__} holds raw HTML: {child.toolTip()[:60]!r}")
    return problems


def test_names_from_files_are_shown_as_plain_text(qtbot, window, digits_export_dir, tmp_path):
    from PySide6.QtWidgets import QApplication

    hostile = _copy_export(digits_export_dir, tmp_path / "hostile", name=HOSTILE_NAME, dataset="<b>data</b>")
    open_model(qtbot, window, hostile)
    assert window.windowTitle() == f"ncsn-desktop - {HOSTILE_NAME[:79]}\u2026"  # titles are plain text in Qt
    assert window.model_panel.name.text().startswith('<h1 style="color:red')
    assert "&lt;h1" in window.model_panel.name.toolTip()
    window.model_panel.show_details()
    assert HOSTILE_NAME in window.model_panel.dialog.findChildren(type(window.model_panel.name))[0].text()
    generate(qtbot, window, batch_size=2, steps_per_level=STEPS)
    window.sample_panel.results.enlarge(0)
    assert HOSTILE_NAME[:30] in window.sample_panel.results.viewer.caption.text()
    window.controller.error_occurred.emit("Test", f"about {HOSTILE_NAME}")  # an error naming the model
    qtbot.wait(20)
    assert _literal_everywhere(window, HOSTILE_NAME) == []

    # PNG settings carry names too: a record naming a hostile model restores as text.
    from desktop.backend.base import SamplerSettings
    from desktop.png_metadata import METADATA_KEY, ImageRecord

    record = ImageRecord("sample", HOSTILE_NAME[:200], "x", 3, SamplerSettings(STEPS, 2e-5, False), "onnxruntime")
    info = PngImagePlugin.PngInfo()
    info.add_text(METADATA_KEY, record.to_json())
    Image.new("L", (8, 8), 128).save(tmp_path / "hostile.png", pnginfo=info)
    with qtbot.waitSignal(window.state.results_changed, timeout=30_000):
        drop_files(qtbot, window, [tmp_path / "hostile.png"])
    assert "<h1" in window.status_label.text() and _literal_everywhere(window, HOSTILE_NAME) == []
    for box in window.error_boxes:
        box.close()
    QApplication.processEvents()


def test_png_settings_nested_thousands_deep_are_a_one_line_refusal(tmp_path):
    from desktop.png_metadata import METADATA_KEY, MetadataError, read_png_record

    info = PngImagePlugin.PngInfo()
    info.add_text(METADATA_KEY, "[" * 5000 + "]" * 5000)
    Image.new("L", (4, 4)).save(tmp_path / "deep.png", pnginfo=info)
    with pytest.raises(MetadataError, match="nests") as error:
        read_png_record(tmp_path / "deep.png")
    assert "\n" not in str(error.value)


# ----------------------------------------------------------------------------- pictures


def _big_png(path: Path, width: int, height: int) -> Path:
    """A grey picture: left half white, right half black (compresses to almost nothing, decodes slowly)."""
    pixels = np.zeros((height, width), np.uint8)
    pixels[:, : width // 2] = 255
    Image.fromarray(pixels, mode="L").save(path, compress_level=1)
    return path


def test_a_large_picture_loads_without_blocking_the_window(qtbot, window, digits_export_dir, tmp_path):
    from PySide6.QtCore import QTimer

    from desktop.imaging import WORKING_SIDE

    open_model(qtbot, window, digits_export_dir)
    path = _big_png(tmp_path / "big.png", 9000, 6000)  # 54 megapixels
    ticks = []
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: ticks.append(window.state.picture_loading))
    timer.start()
    assert window.controller.open_picture(path)
    assert window.state.picture_loading and window.inpaint_panel.loading_bar.isVisibleTo(window.inpaint_panel)
    with qtbot.waitSignal(window.controller.picture_loaded, timeout=120_000):
        pass
    timer.stop()
    assert sum(ticks) >= 3  # the event loop kept running while the picture was decoded and shrunk
    picture, fitted = window.state.inpaint.picture, window.state.inpaint.fitted
    assert picture.original_size == (9000, 6000) and max(picture.image.size) == WORKING_SIDE
    manifest = window.state.manifest
    assert fitted.image.shape == manifest.image_shape and fitted.source_size == (9000, 6000)
    assert (
        fitted.image[:, : manifest.width // 2 - 1].min() > 0.9
        and fitted.image[:, manifest.width // 2 + 1 :].max() < 0.1
    )
    assert not window.inpaint_panel.loading_bar.isVisibleTo(window.inpaint_panel)


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG claiming width x height with one tiny IDAT: refused from its header, never decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")
    )
    return path


def test_a_picture_beyond_the_decoding_bound_is_refused_with_the_bound(qtbot, window, digits_export_dir, tmp_path):
    open_model(qtbot, window, digits_export_dir)
    path = _png_header_only(tmp_path / "bomb.png", 40_000, 40_000)
    started = time.perf_counter()
    _, message = expect_error(qtbot, window, lambda: window.controller.open_picture(path), "at most 100 megapixels")
    assert "1600 megapixels" in message and "\n" not in message
    assert time.perf_counter() - started < 60  # (generous: it reads a header, it does not decode 1.6 gigapixels)


def test_a_new_picture_clears_the_old_results(qtbot, window, digits_export_dir, tmp_path):
    open_model(qtbot, window, digits_export_dir)
    manifest = window.state.manifest
    first = _big_png(tmp_path / "first.png", manifest.width * 4, manifest.height * 4)
    with qtbot.waitSignal(window.controller.picture_loaded, timeout=30_000):
        window.controller.open_picture(first)
    window.inpaint_panel.apply_preset("left half")
    window.state.update_sampler(variants=2, steps_per_level=STEPS)
    with qtbot.waitSignal(window.controller.run_finished, timeout=60_000):
        window.controller.inpaint()
    assert "inpaint" in window.state.results
    with qtbot.waitSignal(window.controller.picture_loaded, timeout=30_000):
        window.controller.open_picture(first)
    assert "inpaint" not in window.state.results  # still in the history, no longer beside the new picture
    assert window.state.history.entries[-1].kind == "inpaint"


def test_placeholders_follow_the_state(qtbot, window, digits_export_dir):
    grid = window.sample_panel.grid
    assert grid.placeholder().startswith("Open a model")
    open_model(qtbot, window, digits_export_dir)
    assert grid.placeholder().startswith("Press Generate to make")


# ----------------------------------------------------------------------------- start-up


def test_the_missing_x11_libraries_are_named_with_the_packages_to_install(tmp_path):
    from desktop.app import XCB_PACKAGES, qt_platform_problem

    fake = tmp_path / "libqxcb.so"
    fake.write_bytes(b"not a shared library")
    problem = qt_platform_problem(fake, {"DISPLAY": ":0"})
    assert "cannot load" in problem and f"sudo apt-get install {XCB_PACKAGES}" in problem
    assert "libxcb-icccm4" in XCB_PACKAGES and "libxcb-keysyms1" in XCB_PACKAGES and "libxcb-cursor0" in XCB_PACKAGES
    assert qt_platform_problem(environment={"QT_QPA_PLATFORM": "offscreen"}) == ""


def test_the_app_prints_the_hint_instead_of_aborting():
    script = (
        "import desktop.app as app\n"
        "app.qt_platform_problem = lambda: app.PLATFORM_HINT.format(reason='libxcb-icccm.so.4: not found')\n"
        "raise SystemExit(app.main([]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "sudo apt-get install libxcb-cursor0 libxcb-icccm4" in done.stderr, done.stderr
