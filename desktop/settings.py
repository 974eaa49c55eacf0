"""Persist the app's state with QSettings, written shortly after each change, by one instance at a time.

A settings file can be stale or edited by hand, so every value read back is
type- and range-checked by the state's own setters; a bad value is skipped
(the default stays), never trusted.

`SettingsStore` writes the settings about half a second after the last change
(debounced), so a crash or a killed process loses at most that half second.
Only one running instance owns a settings file: the first takes a lock file
beside it (`QLockFile`; a lock left by a crashed process is taken over), a
second instance on the same file reads the settings but never writes them
(nor the history kept beside them) and says so in its status bar. Two windows
therefore never overwrite each other's changes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QLockFile, QObject, QSettings, QStandardPaths, QTimer

from desktop.backend.locate import RUNTIMES
from desktop.estimate import CallTimes
from desktop.state import AppState

ORGANIZATION = "ncsn-tf"
APPLICATION = "ncsn-desktop"
WRITE_DELAY_MS = 500  # debounce: one write for a burst of changes (dragging a slider, painting)
MAX_FOLDER_CHARS = 4096

_SAMPLER_KEYS: dict[str, type] = {
    "sampler": str,
    "batch_size": int,
    "seed": int,
    "seed_mode": str,
    "variants": int,
    # every sampler's own settings (`export_format.settings.SAMPLERS`), kept per sampler
    "steps_per_level": int,
    "epsilon": float,
    "denoise": bool,
    "corrector_steps": int,
    "snr": float,
    "resample_steps": int,
    "order": int,
}
_INPAINT_KEYS: dict[str, type] = {"fit_mode": str, "brush_size": int}


def default_settings() -> QSettings:
    """The user's settings (native format, organisation ncsn-tf, application ncsn-desktop)."""
    return QSettings(ORGANIZATION, APPLICATION)


def _is_file_settings(settings: QSettings) -> bool:
    return os.path.isabs(settings.fileName()) and not settings.fileName().startswith("\\HKEY")


def lock_file_for(settings: QSettings) -> str:
    """The lock file that marks which instance owns `settings` (beside the file, or in the app data folder).

    Not FILE.lock: QSettings itself briefly locks that one while it writes an INI file.
    """
    if _is_file_settings(settings):
        return settings.fileName() + ".instance-lock"
    folder = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return str(Path(folder) / "settings.instance-lock")


def history_folder_for(settings: QSettings) -> Path:
    """Where the run history lives: beside a settings file given on the command line, else in the user's data folder."""
    if settings.fileName() and _is_file_settings(settings) and settings.format() == QSettings.Format.IniFormat:
        path = Path(settings.fileName())
        return path.with_name(path.stem + "-history")
    folder = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(folder) / "history"


def _read(settings: QSettings, key: str, kind: type) -> Any:
    """settings[key] converted to `kind`, or None when absent or unconvertible."""
    if not settings.contains(key):
        return None
    raw = settings.value(key)
    try:
        if kind is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("true", "1"):
                return True
            if text in ("false", "0"):
                return False
            return None
        if kind is int:
            return int(str(raw))
        if kind is float:
            return float(str(raw))
        return str(raw)
    except (TypeError, ValueError):
        return None


def load_state(settings: QSettings, state: AppState) -> None:
    """Fill `state` from `settings`, skipping absent or invalid values."""
    for key, kind in _SAMPLER_KEYS.items():
        value = _read(settings, f"sampler/{key}", kind)
        if value is not None:
            try:
                state.update_sampler(**{key: value})
            except ValueError:
                pass
    for key, kind in _INPAINT_KEYS.items():
        value = _read(settings, f"inpaint/{key}", kind)
        if value is not None:
            try:
                state.update_inpaint(**{key: value})
            except ValueError:
                pass
    scale = _read(settings, "output/save_scale", int)
    if scale is not None:
        try:
            state.set_save_scale(scale)
        except ValueError:
            pass
    model_path = _read(settings, "sampler/model_path", str)
    if model_path:
        state.sampler_model_path = model_path
    runtime = _read(settings, "runtime/preferred", str)
    provider = _read(settings, "runtime/provider", str)
    state.set_runtime(runtime if runtime in RUNTIMES else None, provider or None)
    recent = settings.value("models/recent", [])
    if isinstance(recent, str):  # QSettings returns a one-element list as a string
        recent = [recent]
    if isinstance(recent, list):
        state.set_recent([p for p in recent if isinstance(p, str)])
    timings = _read(settings, "timings/seconds_per_call", str)
    if timings:
        state.call_times = CallTimes.from_json(timings)


def last_model(settings: QSettings) -> str:
    """The model open when the app last closed ("" if none)."""
    return _read(settings, "models/last", str) or ""


def save_state(settings: QSettings, state: AppState) -> None:
    """Write `state` to `settings` (the caller syncs)."""
    for key in _SAMPLER_KEYS:
        settings.setValue(f"sampler/{key}", getattr(state.sampler, key))
    for key in _INPAINT_KEYS:
        settings.setValue(f"inpaint/{key}", getattr(state.inpaint, key))
    settings.setValue("output/save_scale", state.save_scale)
    settings.setValue("sampler/model_path", state.sampler_model_path)
    settings.setValue("runtime/preferred", state.preferred_runtime)
    settings.setValue("runtime/provider", state.provider)
    settings.setValue("models/recent", list(state.recent_models))
    if state.model_path:
        settings.setValue("models/last", state.model_path)
    settings.setValue("timings/seconds_per_call", state.call_times.to_json())


class SettingsStore(QObject):
    """The window's settings: read once, written `WRITE_DELAY_MS` after changes, owned by one instance.

    Args:
        settings: the QSettings to use.
        state: the state to save (its change signals schedule a write).
        parent: Qt parent.

    Attributes:
        writable: False when another running instance owns these settings (nothing is written).
        writes: how many times the settings were written (for tests and diagnostics).
    """

    def __init__(self, settings: QSettings, state: AppState, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.state = state
        self.writes = 0
        self._extra: list[Callable[[QSettings], None]] = []
        self._folders: dict[str, str] = {}  # read-only instances remember folders for the session
        lock_path = lock_file_for(settings)
        Path(lock_path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = QLockFile(lock_path)
        self._lock.setStaleLockTime(0)  # never stale by age; a lock of a process that is gone is taken over
        self.writable = self._lock.tryLock(0)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(WRITE_DELAY_MS)
        self._timer.timeout.connect(self.write)
        for signal in (
            state.sampler_changed,
            state.inpaint_changed,
            state.runtime_changed,
            state.recent_changed,
            state.output_changed,
            state.model_changed,
        ):
            signal.connect(self.schedule)

    def on_write(self, writer: Callable[[QSettings], None]) -> None:
        """Also call `writer(settings)` on every write (window geometry, open tab)."""
        self._extra.append(writer)

    def schedule(self, *args: object) -> None:
        """Write soon (restarts the delay, so a burst of changes is one write)."""
        if self.writable:
            self._timer.start()

    @property
    def pending(self) -> bool:
        return self._timer.isActive()

    def write(self) -> None:
        """Write everything now (no-op for a read-only instance)."""
        self._timer.stop()
        if not self.writable:
            return
        save_state(self.settings, self.state)
        for writer in self._extra:
            writer(self.settings)
        for key, folder in self._folders.items():
            self.settings.setValue(f"folders/{key}", folder)
        self.settings.sync()
        self.writes += 1

    def folder(self, key: str) -> str:
        """The folder a file dialog used last ("" if none, or if it no longer exists)."""
        folder = self._folders.get(key) or _read(self.settings, f"folders/{key}", str) or ""
        return folder if folder and len(folder) <= MAX_FOLDER_CHARS and os.path.isdir(folder) else ""

    def set_folder(self, key: str, folder: str) -> None:
        """Remember the folder a file dialog ended in."""
        if folder and len(folder) <= MAX_FOLDER_CHARS:
            self._folders[key] = folder
            self.schedule()

    def close(self) -> None:
        """Write what is pending and release the settings for other instances."""
        if self.writable:
            self.write()
            self._lock.unlock()
            self.writable = False
