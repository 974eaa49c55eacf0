"""Paint the inpainting mask over the model-sized picture; and show the crop on the source."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QPointF, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from desktop.masks import KNOWN, UNKNOWN, overlay_mask, paint_stroke
from desktop.state import AppState
from desktop.widgets.qt_images import to_qimage

if TYPE_CHECKING:
    from PIL import Image

EMPTY_GREY = 0.5  # shown where no picture is loaded yet
GRID_MIN_ZOOM = 12  # draw the pixel grid when a model pixel is at least this many screen pixels
PREVIEW_SIDE = 512  # the source picture's preview is converted once at most this large


class MaskCanvas(QWidget):
    """The picture at the model's size, enlarged crisply, with unknown pixels tinted.

    Left button paints "unknown" (to fill in), right button (or eraser mode)
    makes pixels known again. Each stroke is one undo step.
    """

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self._image: QImage | None = None
        self._size: tuple[int, int] | None = None  # (width, height) of the model's images
        self._stale = True
        self._stroke_value: float | None = None
        self._last_point: tuple[float, float] | None = None
        self._cursor: QPointF | None = None
        self.setMouseTracking(True)
        self.setMinimumSize(150, 150)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setToolTip("Paint the region to fill in (left button); right button erases")
        state.inpaint_changed.connect(self.refresh)
        state.mask_changed.connect(self.refresh)
        state.picture_changed.connect(self.refresh)
        state.model_changed.connect(self.refresh)
        self.refresh()

    def sizeHint(self) -> QSize:
        return QSize(360, 360)

    def refresh(self) -> None:
        """Mark the picture for redrawing; it is converted when painted, at most once per screen update.

        A burst of brush moves between two paints costs one conversion of H x W model
        pixels (whatever the source picture's size), never one per move.
        """
        manifest = self.state.manifest
        self._size = (manifest.width, manifest.height) if manifest is not None and self.state.mask is not None else None
        self._stale = True
        self.update()

    def current_image(self) -> QImage | None:
        """The model-sized picture with the mask tinted, converted now if the state changed since."""
        if self._stale:
            state = self.state
            manifest, mask = state.manifest, state.mask
            if manifest is None or mask is None:
                self._image = None
            else:
                fitted = state.inpaint.fitted
                picture = (
                    fitted.image if fitted is not None else np.full(manifest.image_shape, EMPTY_GREY, np.float32)
                )  # [H, W, C] in [0, 1]
                self._image = to_qimage(overlay_mask(picture, mask))
            self._stale = False
        return self._image

    def image_rect(self) -> QRect:
        """Where the model-sized image is drawn (whole-pixel zoom, centred)."""
        if self._size is None:
            return QRect()
        width, height = self._size
        zoom = min(self.width() / width, self.height() / height)
        zoom = math.floor(zoom) if zoom >= 1 else zoom
        draw_w, draw_h = max(1, int(width * zoom)), max(1, int(height * zoom))
        return QRect((self.width() - draw_w) // 2, (self.height() - draw_h) // 2, draw_w, draw_h)

    def model_point(self, point: QPointF) -> tuple[float, float]:
        """Widget coordinates -> (x, y) in model pixels."""
        rect = self.image_rect()
        assert self._size is not None
        width, height = self._size
        return (
            (point.x() - rect.left()) * width / rect.width(),
            (point.y() - rect.top()) * height / rect.height(),
        )

    def widget_point(self, x: float, y: float) -> QPointF:
        """(x, y) in model pixels -> widget coordinates (for tests and the cursor)."""
        rect = self.image_rect()
        assert self._size is not None
        width, height = self._size
        return QPointF(rect.left() + x * rect.width() / width, rect.top() + y * rect.height() / height)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(38, 40, 44))
        image = self.current_image()
        if image is None:
            painter.setPen(QColor(170, 170, 170))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "Open a model to paint a mask")
            return
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        rect = self.image_rect()
        painter.drawImage(rect, image)
        zoom = rect.width() / image.width()
        if zoom >= GRID_MIN_ZOOM:
            painter.setPen(QPen(QColor(0, 0, 0, 40), 1))
            for column in range(1, image.width()):
                x = rect.left() + round(column * zoom)
                painter.drawLine(x, rect.top(), x, rect.bottom())
            for row in range(1, image.height()):
                y = rect.top() + round(row * rect.height() / image.height())
                painter.drawLine(rect.left(), y, rect.right(), y)
        if self._cursor is not None and rect.contains(self._cursor.toPoint()):
            radius = max(self.state.inpaint.brush_size, 1) / 2 * zoom
            painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
            painter.setPen(QPen(QColor(255, 255, 255, 200), 1.5))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawEllipse(self._cursor, radius, radius)

    def _stroke_to(self, point: QPointF) -> None:
        mask = self.state.mask
        if mask is None or self._stroke_value is None:
            return
        current = self.model_point(point)
        start = self._last_point or current
        painted = paint_stroke(np.asarray(mask), start, current, self.state.inpaint.brush_size, self._stroke_value)
        if self._last_point is None:
            self.state.push_mask(painted)  # a new undo step per stroke
        else:
            self.state.continue_mask(painted)
        self._last_point = current

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._size is None or self.state.busy:
            return
        if event.button() == Qt.MouseButton.LeftButton:
            self._stroke_value = KNOWN if self.state.inpaint.erasing else UNKNOWN
        elif event.button() == Qt.MouseButton.RightButton:
            self._stroke_value = KNOWN
        else:
            return
        self._last_point = None
        self._stroke_to(event.position())

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        self._cursor = event.position()
        if self._stroke_value is not None and event.buttons() & (
            Qt.MouseButton.LeftButton | Qt.MouseButton.RightButton
        ):
            self._stroke_to(event.position())
        self.update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        self._stroke_value = None
        self._last_point = None

    def leaveEvent(self, event: object) -> None:  # noqa: N802
        self._cursor = None
        self.update()


class PictureView(QWidget):
    """The source picture, small, with the region used for the model outlined.

    The picture is converted for display once, when it changes, at most
    PREVIEW_SIDE pixels on its long side: painting the mask never touches it.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image: QImage | None = None
        self._source: Image.Image | None = None
        self._scale = 1.0  # preview pixels per picture pixel
        self._box: tuple[float, float, float, float] | None = None
        self.setMinimumSize(96, 72)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)

    def sizeHint(self) -> QSize:
        return QSize(120, 90)

    def set_picture(self, picture: Image.Image | None, box: tuple[float, float, float, float] | None) -> None:
        """Show a PIL picture (None clears) with the used region `box` in its pixels."""
        if picture is None:
            self._image, self._source = None, None
        elif picture is not self._source:
            from PIL import Image

            self._source = picture
            preview = picture.convert("RGB")
            side = max(preview.size)
            if side > PREVIEW_SIDE:
                size = (
                    max(1, round(preview.width * PREVIEW_SIDE / side)),
                    max(1, round(preview.height * PREVIEW_SIDE / side)),
                )
                preview = preview.resize(size, Image.Resampling.BILINEAR)
            self._scale = preview.width / picture.width
            rgb = np.asarray(preview, dtype=np.float32) / 255.0  # [h, w, 3] in [0, 1]
            self._image = to_qimage(rgb)
        self._box = None if box is None else tuple(value * self._scale for value in box)  # type: ignore[assignment]
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(38, 40, 44))
        if self._image is None:
            painter.setPen(QColor(170, 170, 170))
            painter.drawText(
                self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, "Open or drop a picture"
            )
            return
        width, height = self._image.width(), self._image.height()
        if self._box is not None:  # room for padding outside the picture
            left, top, right, bottom = self._box
            span_w, span_h = max(right, width) - min(left, 0), max(bottom, height) - min(top, 0)
            origin_x, origin_y = min(left, 0), min(top, 0)
        else:
            span_w, span_h, origin_x, origin_y = width, height, 0.0, 0.0
        zoom = min((self.width() - 8) / span_w, (self.height() - 8) / span_h)
        offset_x = (self.width() - span_w * zoom) / 2 - origin_x * zoom
        offset_y = (self.height() - span_h * zoom) / 2 - origin_y * zoom
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, zoom < 1)
        painter.drawImage(QRectF(offset_x, offset_y, width * zoom, height * zoom), self._image)
        if self._box is not None:
            left, top, right, bottom = self._box
            box = QRectF(offset_x + left * zoom, offset_y + top * zoom, (right - left) * zoom, (bottom - top) * zoom)
            painter.setPen(QPen(QColor(90, 160, 255), 2, Qt.PenStyle.DashLine))
            painter.drawRect(box)
