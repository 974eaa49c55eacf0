"""NumPy images -> QImage/QPixmap, always scaled nearest-neighbour so small outputs stay crisp."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap

from desktop.imaging import to_uint8


def to_qimage(image: np.ndarray) -> QImage:
    """[H, W, C] float32 in [0, 1] (C 1 or 3) -> a QImage owning its pixels."""
    pixels = np.ascontiguousarray(to_uint8(image))  # [H, W, C] uint8
    height, width, channels = pixels.shape
    if channels == 1:
        qimage = QImage(pixels.data, width, height, width, QImage.Format.Format_Grayscale8)
    elif channels == 3:
        qimage = QImage(pixels.data, width, height, 3 * width, QImage.Format.Format_RGB888)
    else:
        raise ValueError(f"image must have 1 or 3 channels, got {channels}")
    return qimage.copy()  # detach from the NumPy buffer


def scaled_nearest(image: QImage, width: int, height: int) -> QPixmap:
    """A pixmap of `image` fitted into width x height (aspect kept), nearest-neighbour."""
    return QPixmap.fromImage(
        image.scaled(
            max(1, width),
            max(1, height),
            Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.FastTransformation,
        )
    )


def integer_scale(image_width: int, image_height: int, width: int, height: int) -> int:
    """The largest integer zoom (>= 1) that fits the image into width x height."""
    return max(1, min(width // max(1, image_width), height // max(1, image_height)))
