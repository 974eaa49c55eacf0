"""Images enlarged in their own (non-modal) window: previous / next, Save and Copy."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication, QKeyEvent, QResizeEvent
from PySide6.QtWidgets import QDialog, QHBoxLayout, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from desktop.widgets.qt_images import integer_scale, scaled_nearest, to_qimage
from desktop.widgets.text import plain_label, shorten

MIN_SIDE = 320  # on-screen size of the enlarged image at least


class ImageViewer(QDialog):
    """Shows one of `images` ([N, H, W, C] float32 in [0, 1]) enlarged, nearest-neighbour.

    Args:
        images: the images to step through.
        titles: one window title per image.
        details: one caption per image (plain text).
        index: the image shown first.
        can_save: which images offer Save (default all).

    Signals:
        save_requested(int): Save was pressed on image `index` (the owner asks for a file name).
    """

    save_requested = Signal(int)

    def __init__(
        self,
        images: Sequence[np.ndarray],
        titles: Sequence[str],
        details: Sequence[str],
        index: int = 0,
        parent: QWidget | None = None,
        can_save: Sequence[bool] | None = None,
    ) -> None:
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self._images = list(images)
        self._titles, self._details = list(titles), list(details)
        self._can_save = list(can_save) if can_save is not None else [True] * len(self._images)
        self.index = 0
        self.picture = plain_label()
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.picture.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.picture.setMinimumSize(64, 64)
        self.caption = plain_label(wrap=True, selectable=True)
        self.previous_button = QPushButton("\u2190 Previous")
        self.previous_button.setToolTip("The previous image (Left arrow)")
        self.next_button = QPushButton("Next \u2192")
        self.next_button.setToolTip("The next image (Right arrow)")
        self.save_button = QPushButton("Save PNG...")
        copy = QPushButton("Copy")
        close = QPushButton("Close")
        self.previous_button.clicked.connect(lambda: self.show_index(self.index - 1))
        self.next_button.clicked.connect(lambda: self.show_index(self.index + 1))
        self.save_button.clicked.connect(lambda: self.save_requested.emit(self.index))
        copy.clicked.connect(self.copy_to_clipboard)
        close.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addWidget(self.previous_button)
        buttons.addWidget(self.next_button)
        buttons.addStretch(1)
        buttons.addWidget(self.save_button)
        buttons.addWidget(copy)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.picture, 1)
        layout.addWidget(self.caption)
        layout.addLayout(buttons)
        self.show_index(index)
        first = self._qimage
        zoom = max(1, -(-MIN_SIDE // max(first.width(), first.height())))
        self.resize(max(first.width() * zoom + 40, 460), first.height() * zoom + 120)

    def show_index(self, index: int) -> None:
        """Show image `index` (clamped to the range)."""
        self.index = max(0, min(len(self._images) - 1, index))
        self._qimage = to_qimage(self._images[self.index])
        self.setWindowTitle(shorten(self._titles[self.index], 120))
        self.caption.setText(self._details[self.index])
        self.previous_button.setEnabled(self.index > 0)
        self.next_button.setEnabled(self.index < len(self._images) - 1)
        self.save_button.setVisible(self._can_save[self.index])
        self._rescale()

    def _rescale(self) -> None:
        size = self.picture.size()
        image = self._qimage
        zoom = integer_scale(image.width(), image.height(), size.width(), size.height())
        self.picture.setPixmap(scaled_nearest(image, image.width() * zoom, image.height() * zoom))

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        """Left / Right arrows: previous / next image (before QDialog moves the focus with them)."""
        step = {Qt.Key.Key_Left: -1, Qt.Key.Key_Right: 1}.get(Qt.Key(event.key()))
        if step is not None:
            self.show_index(self.index + step)
            event.accept()
            return
        super().keyPressEvent(event)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._rescale()

    def copy_to_clipboard(self) -> None:
        """The image, enlarged nearest-neighbour, onto the clipboard."""
        image = self._qimage
        zoom = max(1, -(-MIN_SIDE // max(image.width(), image.height())))
        QGuiApplication.clipboard().setImage(
            image.scaled(
                image.width() * zoom,
                image.height() * zoom,
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.FastTransformation,
            )
        )
