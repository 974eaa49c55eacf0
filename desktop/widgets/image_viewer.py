"""One image enlarged in its own (non-modal) window, with Save and Copy."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication, QResizeEvent
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from desktop.widgets.qt_images import integer_scale, scaled_nearest, to_qimage

MIN_SIDE = 320  # on-screen size of the enlarged image at least


class ImageViewer(QDialog):
    """Shows `image` ([H, W, C] float32 in [0, 1]) enlarged, nearest-neighbour.

    Signals:
        save_requested(): the user pressed Save (the owner asks for a file name).
    """

    save_requested = Signal()

    def __init__(
        self, image: np.ndarray, title: str, details: str, parent: QWidget | None = None, can_save: bool = True
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self._qimage = to_qimage(image)
        self.picture = QLabel()
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.picture.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.picture.setMinimumSize(64, 64)
        caption = QLabel(details)
        caption.setWordWrap(True)
        caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        save = QPushButton("Save PNG...")
        save.clicked.connect(self.save_requested)
        save.setVisible(can_save)
        copy = QPushButton("Copy")
        copy.clicked.connect(self.copy_to_clipboard)
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addWidget(save)
        buttons.addWidget(copy)
        buttons.addStretch(1)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.picture, 1)
        layout.addWidget(caption)
        layout.addLayout(buttons)
        zoom = max(1, -(-MIN_SIDE // max(self._qimage.width(), self._qimage.height())))
        self.resize(self._qimage.width() * zoom + 40, self._qimage.height() * zoom + 110)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802
        super().resizeEvent(event)
        size = self.picture.size()
        zoom = integer_scale(self._qimage.width(), self._qimage.height(), size.width(), size.height())
        self.picture.setPixmap(scaled_nearest(self._qimage, self._qimage.width() * zoom, self._qimage.height() * zoom))

    def copy_to_clipboard(self) -> None:
        """The image, enlarged nearest-neighbour, onto the clipboard."""
        zoom = max(1, -(-MIN_SIDE // max(self._qimage.width(), self._qimage.height())))
        QGuiApplication.clipboard().setImage(
            self._qimage.scaled(
                self._qimage.width() * zoom,
                self._qimage.height() * zoom,
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.FastTransformation,
            )
        )
