"""A long session in one process: the real window offscreen, hundreds of runs, 50,000 strokes and settings changes.

PySide6 6.12.0 leaked one reference to True/False per bool call and dropped
one to None per void call; after a few thousand calls the process aborted
(`Fatal Python error: bool_dealloc`). This test drives the app itself, through
its widgets and controller, far past that point and checks that the reference
counts of True, False and None stay where they were, and that the process
lives to report it. The session runs in a child process, so an abort is a
clear test failure (with the child's last words), never a dead test run.

Run it alone with `python tests/test_desktop_soak.py EXPORT_DIR OUT_JSON`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CYCLES = int(os.environ.get("SOAK_CYCLES", 200))  # Generate / Cancel cycles (every tenth runs to the end instead)
STROKES = int(os.environ.get("SOAK_STROKES", 50_000))  # brush strokes on the mask canvas (press, move, release)
SETTINGS_CHANGES = int(
    os.environ.get("SOAK_CHANGES", 50_000)
)  # changes made through the sampler, sample, inpaint and save widgets
MAX_REFCOUNT_DRIFT = 1_000  # a leak of one reference per call would drift by tens of thousands
PROCESS_EVENTS_EVERY = 200  # let the window paint and timers fire this often during a burst
NAMES = ("True", "False", "None")


def _wait(app, predicate, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        app.processEvents()
        if time.monotonic() > deadline:
            raise TimeoutError("the app did not get there in time")
        time.sleep(0.001)


def run_session(export_dir: str, workdir: str) -> dict:
    """Drive one window through the whole session; returns the counts and the reference-count drift."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QSettings, Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from desktop.history import MAX_ENTRIES
    from desktop.widgets.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    settings_path = os.path.join(workdir, "settings.ini")
    window = MainWindow(settings=QSettings(settings_path, QSettings.Format.IniFormat))
    window.resize(1000, 700)
    window.show()
    events: list[str] = []
    window.controller.model_loaded.connect(lambda: events.append("loaded"))
    window.controller.run_finished.connect(lambda kind: events.append("finished"))
    window.controller.run_cancelled.connect(lambda kind: events.append("cancelled"))
    window.controller.run_failed.connect(lambda kind: events.append("failed"))
    window.error_shown.connect(lambda title, message: events.append(f"error {title}: {message}"))
    window.controller.open_model(export_dir)
    _wait(app, lambda: "loaded" in events or any(e.startswith("error") for e in events))
    assert "loaded" in events, events
    state = window.state
    max_steps = state.max_steps_per_level

    def refcounts() -> tuple[int, int, int]:
        return sys.getrefcount(True), sys.getrefcount(False), sys.getrefcount(None)

    def generate_and_cancel(index: int) -> None:
        events.clear()
        finish = index % 10 == 0
        state.update_sampler(steps_per_level=1 if finish else min(max_steps, 100_000), batch_size=2, seed_mode="fixed")
        window.tabs.setCurrentWidget(window.sample_panel)
        window.sample_panel.generate_button.click()
        if not finish:
            window.cancel_button.click()
        _wait(app, lambda: bool(events))
        assert events[0] == ("finished" if finish else "cancelled"), events

    canvas = window.inpaint_panel.canvas
    manifest = state.manifest

    def stroke(index: int) -> None:
        row, column = divmod(index % (manifest.height * manifest.width), manifest.width)
        start = canvas.widget_point(column + 0.5, row + 0.5).toPoint()
        end = canvas.widget_point((column + 3) % manifest.width + 0.5, row + 0.5).toPoint()
        button = Qt.MouseButton.LeftButton if index % 3 else Qt.MouseButton.RightButton
        # QTest sends the events as the window system would (a QMouseEvent made in Python and passed to
        # sendEvent keeps one reference to None per event in PySide6 6.11: a leak of the test, not the app).
        QTest.mousePress(canvas, button, Qt.KeyboardModifier.NoModifier, start)
        QTest.mouseMove(canvas, end)
        QTest.mouseRelease(canvas, button, Qt.KeyboardModifier.NoModifier, end)
        if index % 1_000 == 999:
            window.inpaint_panel.undo_button.click()
            window.inpaint_panel.redo_button.click()

    sampler, sample, inpaint = window.sampler_panel, window.sample_panel, window.inpaint_panel
    scale = sample.results.scale

    def change(index: int) -> None:
        what = index % 8
        if what == 0:
            sampler.steps.setValue(1 + index % 50)
        elif what == 1:
            sampler.denoise.setChecked(not sampler.denoise.isChecked())  # bool in, bool out, bool signal
        elif what == 2:
            sampler.seed.setValue(index)
        elif what == 3:
            sampler.epsilon.setValue(1e-5 * (1 + index % 7))
        elif what == 4:
            sample.batch.setValue(1 + index % 16)
        elif what == 5:
            sampler.seed_mode.setCurrentIndex(index % 3)
            sampler.seed_mode.activated.emit(index % 3)
        elif what == 6:
            inpaint.brush_size.setValue(1 + index % 4)
        else:
            scale.setValue(index % 5)

    # Warm up every path (first calls create caches) and fill the history to its bound (its entries hold
    # references to True, False and None by design), then measure.
    for index in range(MAX_ENTRIES + 1):
        generate_and_cancel(index)
    window.tabs.setCurrentWidget(window.inpaint_panel)
    for index in range(PROCESS_EVENTS_EVERY):
        stroke(index)
        change(index)
    app.processEvents()
    before = refcounts()
    phases: dict[str, dict[str, float]] = {}
    started = time.perf_counter()

    def phase(name: str, action, count: int) -> None:
        """Run `action(index)` `count` times (letting the window paint now and then); record time and drift."""
        counts, clock = refcounts(), time.perf_counter()
        for index in range(count):
            action(index)
            if index % PROCESS_EVENTS_EVERY == 0:
                app.processEvents()
        app.processEvents()
        drift = [b - a for a, b in zip(counts, refcounts(), strict=True)]
        phases[name] = {"seconds": round(time.perf_counter() - clock, 1), **dict(zip(NAMES, drift, strict=True))}

    phase("generate_cancel", generate_and_cancel, CYCLES)
    window.tabs.setCurrentWidget(window.inpaint_panel)
    phase("strokes", stroke, STROKES)
    phase("settings", change, SETTINGS_CHANGES)
    after = refcounts()

    expected_steps = state.sampler.steps_per_level
    _wait(app, lambda: not window.store.pending, timeout_s=10)  # the debounced write of the last change
    written = QSettings(settings_path, QSettings.Format.IniFormat)
    history = len(state.history.entries)
    window.close()
    return {
        "cycles": CYCLES,
        "strokes": STROKES,
        "settings_changes": SETTINGS_CHANGES,
        "refcounts_before": dict(zip(NAMES, before, strict=True)),
        "refcount_drift": {name: a - b for name, a, b in zip(NAMES, after, before, strict=True)},
        "phases": phases,
        "seconds": round(time.perf_counter() - started, 1),
        "history_entries": history,
        "settings_written_steps": int(written.value("sampler/steps_per_level")),
        "expected_steps": expected_steps,
    }


@pytest.mark.slow
def test_a_long_session_keeps_true_false_and_none_alive(digits_export_dir, tmp_path):
    out = tmp_path / "soak.json"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, __file__, str(digits_export_dir), str(tmp_path), str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1_800,
    )
    assert done.returncode == 0 and out.exists(), f"the session died (exit {done.returncode}): {done.stderr[-3000:]}"
    report = json.loads(out.read_text())
    print("soak:", json.dumps(report))
    (REPO / "build").mkdir(exist_ok=True)
    (REPO / "build" / "desktop_soak.json").write_text(json.dumps(report, indent=2))
    assert report["cycles"] >= 200 and report["strokes"] >= 50_000 and report["settings_changes"] >= 50_000
    for name, drift in report["refcount_drift"].items():
        assert abs(drift) < MAX_REFCOUNT_DRIFT, (name, report)
    assert report["history_entries"] == 100  # the history keeps its bound (MAX_ENTRIES) through 300 runs
    assert report["settings_written_steps"] == report["expected_steps"]  # the last change reached the file


if __name__ == "__main__":
    export, work, result = sys.argv[1:4]
    Path(result).write_text(json.dumps(run_session(export, work)))
