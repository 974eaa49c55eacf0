"""File dialogs that start where the same dialog ended last time (remembered per dialog in the settings)."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QWidget

from desktop.settings import SettingsStore


class FileDialogs:
    """Open / save / folder dialogs, each remembering its own last folder.

    Args:
        store: where the folders are kept (a read-only instance keeps them for the session).

    Dialog keys name the purpose ("model", "picture", "save_images", "save_grid", "save_image"),
    so saving does not move the folder that models are opened from.
    """

    def __init__(self, store: SettingsStore) -> None:
        self.store = store

    def start_folder(self, key: str) -> str:
        """Where dialog `key` opens: its last folder, else the home folder."""
        return self.store.folder(key) or str(Path.home())

    def _remember(self, key: str, path: str, is_folder: bool = False) -> None:
        if path:
            self.store.set_folder(key, path if is_folder else os.path.dirname(path))

    def open_file(self, parent: QWidget, key: str, title: str, name_filter: str) -> str:
        path, _ = QFileDialog.getOpenFileName(parent, title, self.start_folder(key), name_filter)
        self._remember(key, path)
        return path

    def save_file(self, parent: QWidget, key: str, title: str, file_name: str, name_filter: str) -> str:
        start = os.path.join(self.start_folder(key), file_name)
        path, _ = QFileDialog.getSaveFileName(parent, title, start, name_filter)
        self._remember(key, path)
        return path

    def folder(self, parent: QWidget, key: str, title: str) -> str:
        path = QFileDialog.getExistingDirectory(parent, title, self.start_folder(key))
        self._remember(key, path, is_folder=True)
        return path
