"""Persist the app's state with QSettings: last/recent models, runtime, sampler, inpainting.

A settings file can be stale or edited by hand, so every value read back is
type- and range-checked by the state's own setters; a bad value is skipped
(the default stays), never trusted. Window geometry is stored by the window.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSettings

from desktop.backend.locate import RUNTIMES
from desktop.state import AppState

ORGANIZATION = "ncsn-tf"
APPLICATION = "ncsn-desktop"

_SAMPLER_KEYS: dict[str, type] = {
    "batch_size": int,
    "seed": int,
    "seed_mode": str,
    "steps_per_level": int,
    "epsilon": float,
    "denoise": bool,
    "variants": int,
}
_INPAINT_KEYS: dict[str, type] = {"fit_mode": str, "brush_size": int}


def default_settings() -> QSettings:
    """The user's settings (native format, organisation ncsn-tf, application ncsn-desktop)."""
    return QSettings(ORGANIZATION, APPLICATION)


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


def last_model(settings: QSettings) -> str:
    """The model open when the app last closed ("" if none)."""
    return _read(settings, "models/last", str) or ""


def save_state(settings: QSettings, state: AppState) -> None:
    """Write `state` to `settings` (and sync)."""
    for key in _SAMPLER_KEYS:
        settings.setValue(f"sampler/{key}", getattr(state.sampler, key))
    for key in _INPAINT_KEYS:
        settings.setValue(f"inpaint/{key}", getattr(state.inpaint, key))
    settings.setValue("sampler/model_path", state.sampler_model_path)
    settings.setValue("runtime/preferred", state.preferred_runtime)
    settings.setValue("runtime/provider", state.provider)
    settings.setValue("models/recent", list(state.recent_models))
    settings.setValue("models/last", state.model_path)
    settings.sync()
