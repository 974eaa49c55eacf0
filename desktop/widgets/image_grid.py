"""A grid of small images, scaled nearest-neighbour, with captions; click one to enlarge, right-click for more."""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QContextMenuEvent, QImage, QMouseEvent, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QSizePolicy, QWidget

from desktop.widgets.qt_images import to_qimage

GAP = 8  # pixels between cells
CAPTION_HEIGHT = 16


class ImageGrid(QWidget):
    """Shows a batch of images as large as the widget allows, crisp (nearest-neighbour).

    Signals:
        image_clicked(int): index of the clicked image.
        context_requested(int, QPoint): right click on image `index` at a global position.
    """

    image_clicked = Signal(int)
    context_requested = Signal(int, QPoint)

    def __init__(self, placeholder: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._images: list[QImage] = []
        self._captions: list[str] = []
        self._placeholder = placeholder
        self._dimmed = False
        self._hover = -1
        self._columns: int | None = None
        self._hint = "Click an image to enlarge it"
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(120, 90)
        self.setAutoFillBackground(True)
        palette = self.palette()
        palette.setColor(QPalette.ColorRole.Window, QColor(38, 40, 44))
        self.setPalette(palette)

    def sizeHint(self) -> QSize:
        return QSize(560, 480)

    def set_images(
        self,
        images: np.ndarray | None,
        captions: list[str] | None = None,
        dimmed: bool = False,
        columns: int | None = None,
    ) -> None:
        """Show [B, H, W, C] float32 images in [0, 1] (None clears).

        Args:
            captions: one short line per image.
            dimmed: draw translucent (a live preview of a run in progress).
            columns: images per row (default: near-square).
        """
        self._images = [] if images is None else [to_qimage(image) for image in images]
        self._captions = list(captions or [])
        self._dimmed = dimmed
        self._columns = columns
        self.setToolTip(self._hint if self._images else "")
        self.update()

    def image_count(self) -> int:
        return len(self._images)

    def set_placeholder(self, text: str) -> None:
        """The text shown when there are no images."""
        if text != self._placeholder:
            self._placeholder = text
            self.update()

    def placeholder(self) -> str:
        return self._placeholder

    def set_hint(self, text: str) -> None:
        """The tooltip shown over the images."""
        self._hint = text
        self.setToolTip(text if self._images else "")

    def _layout(self) -> tuple[int, int, int]:
        """(columns, rows, cell side in pixels) for the current size."""
        count = len(self._images)
        if count == 0:
            return 0, 0, 0
        width, height = self.width() - GAP, self.height() - GAP
        best = (1, count, 1)
        candidates = [self._columns] if self._columns else range(1, count + 1)
        for columns in candidates:
            rows = math.ceil(count / columns)
            side = min(width // columns - GAP, height // rows - GAP - CAPTION_HEIGHT)
            if side > best[2]:
                best = (columns, rows, side)
        return best

    def cell_rect(self, index: int) -> QRect:
        """Where image `index` is drawn (widget coordinates)."""
        columns, rows, side = self._layout()
        if side <= 0 or not 0 <= index < len(self._images):
            return QRect()
        image = self._images[index]
        row, column = divmod(index, columns)
        total_w = columns * (side + GAP) + GAP
        total_h = rows * (side + GAP + CAPTION_HEIGHT) + GAP
        left = (self.width() - total_w) // 2 + GAP + column * (side + GAP)
        top = (self.height() - total_h) // 2 + GAP + row * (side + GAP + CAPTION_HEIGHT)
        # Whole-pixel zoom when it fits, so every model pixel is the same size on screen.
        zoom = side / max(image.width(), image.height())
        if zoom >= 1:
            zoom = math.floor(zoom)
        draw_w, draw_h = max(1, int(image.width() * zoom)), max(1, int(image.height() * zoom))
        return QRect(left + (side - draw_w) // 2, top + (side - draw_h) // 2, draw_w, draw_h)

    def index_at(self, point: QPoint) -> int:
        for index in range(len(self._images)):
            if self.cell_rect(index).contains(point):
                return index
        return -1

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt override)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        if not self._images:
            painter.setPen(QColor(170, 170, 170))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._placeholder)
            return
        if self._dimmed:
            painter.setOpacity(0.75)
        for index, image in enumerate(self._images):
            rect = self.cell_rect(index)
            if rect.isEmpty():
                continue
            painter.drawImage(rect, image)
            if index == self._hover:
                painter.setPen(QColor(90, 160, 255))
                painter.drawRect(rect.adjusted(-2, -2, 1, 1))
            if index < len(self._captions):
                painter.setPen(QColor(200, 200, 200))
                caption = QRect(rect.left() - GAP // 2, rect.bottom() + 2, rect.width() + GAP, CAPTION_HEIGHT)
                painter.drawText(
                    caption, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, self._captions[index]
                )

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        hover = self.index_at(event.position().toPoint())
        if hover != self._hover:
            self._hover = hover
            self.setCursor(Qt.CursorShape.PointingHandCursor if hover >= 0 else Qt.CursorShape.ArrowCursor)
            self.update()

    def leaveEvent(self, event: object) -> None:  # noqa: N802
        self._hover = -1
        self.update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.LeftButton:
            index = self.index_at(event.position().toPoint())
            if index >= 0:
                self.image_clicked.emit(index)

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:  # noqa: N802
        index = self.index_at(event.pos())
        if index >= 0:
            self.context_requested.emit(index, event.globalPos())
