"""Inpainting masks: presets, brush strokes and an undo/redo history. No Qt.

Masks are [H, W] float32 with 1 = known pixel (kept) and 0 = unknown (filled in
by the model), the convention of docs/DESIGN.md. The brush paints unknown
pixels; the eraser makes them known again.
"""

from __future__ import annotations

import numpy as np

PRESETS = ("left half", "right half", "top half", "bottom half", "centre square", "random pixels")
KNOWN, UNKNOWN = 1.0, 0.0
MAX_HISTORY = 200
UNKNOWN_TINT = (1.0, 0.2, 0.75)  # magenta: rarely a colour of the picture itself


def full_mask(height: int, width: int) -> np.ndarray:
    """Everything known: [H, W] float32 of ones."""
    return np.ones((height, width), np.float32)


def preset_mask(name: str, height: int, width: int, seed: int = 0) -> np.ndarray:
    """A named mask; the named region is the part to fill in.

    "left half" ... "bottom half": that half unknown (the reference inpaints the
    right half); "centre square": the centred (H/2 x W/2) block unknown; "random
    pixels": each pixel unknown with probability 1/2 (seeded, reproducible).

    Returns:
        [H, W] float32, 1 = known.
    """
    mask = full_mask(height, width)
    if name == "left half":
        mask[:, : width // 2] = UNKNOWN
    elif name == "right half":
        mask[:, width // 2 :] = UNKNOWN
    elif name == "top half":
        mask[: height // 2, :] = UNKNOWN
    elif name == "bottom half":
        mask[height // 2 :, :] = UNKNOWN
    elif name == "centre square":
        top, left = height // 4, width // 4
        mask[top : top + max(1, height // 2), left : left + max(1, width // 2)] = UNKNOWN
    elif name == "random pixels":
        mask = (np.random.default_rng(seed).random((height, width)) >= 0.5).astype(np.float32)
    else:
        raise ValueError(f"unknown mask preset {name!r}; use one of {PRESETS}")
    return mask


def paint_stroke(
    mask: np.ndarray, start: tuple[float, float], end: tuple[float, float], diameter: float, value: float
) -> np.ndarray:
    """Paint a round brush along the segment start -> end.

    Args:
        mask: [H, W] float32, 1 = known.
        start, end: (x, y) in mask pixel units (pixel (i, j) spans x in [j, j+1)).
        diameter: brush size in pixels (>= 1 paints at least the pixel under the point).
        value: UNKNOWN (brush) or KNOWN (eraser).

    Returns:
        A new [H, W] float32 mask.
    """
    height, width = mask.shape
    (x0, y0), (x1, y1) = start, end
    radius = max(diameter, 1.0) / 2.0
    painted = mask.copy()
    # Only the pixels near the segment can change: work in its bounding box (grown by the radius).
    left = max(0, int(np.floor(min(x0, x1) - radius)))
    right = min(width, int(np.ceil(max(x0, x1) + radius)) + 1)
    top = max(0, int(np.floor(min(y0, y1) - radius)))
    bottom = min(height, int(np.ceil(max(y0, y1) + radius)) + 1)
    if left < right and top < bottom:
        ys = np.arange(top, bottom, dtype=np.float32)[:, None] + 0.5  # [h, 1] pixel centres
        xs = np.arange(left, right, dtype=np.float32)[None, :] + 0.5  # [1, w]
        dx, dy = x1 - x0, y1 - y0
        length2 = dx * dx + dy * dy
        t = np.clip(((xs - x0) * dx + (ys - y0) * dy) / length2, 0.0, 1.0) if length2 > 0 else 0.0  # [h, w]
        distance2 = (xs - (x0 + t * dx)) ** 2 + (ys - (y0 + t * dy)) ** 2  # [h, w]
        box = painted[top:bottom, left:right]
        box[distance2 <= radius * radius] = value
    # The pixel under each end point is always painted, however small the brush.
    for x, y in (start, end):
        column, row = int(np.floor(x)), int(np.floor(y))
        if 0 <= row < height and 0 <= column < width:
            painted[row, column] = value
    return painted


class MaskHistory:
    """The current mask with undo/redo.

    Args:
        mask: the initial [H, W] float32 mask (1 = known).
    """

    def __init__(self, mask: np.ndarray) -> None:
        self._undo: list[np.ndarray] = []
        self._redo: list[np.ndarray] = []
        self._current = mask.astype(np.float32).copy()

    @property
    def current(self) -> np.ndarray:
        """[H, W] float32, 1 = known (a read-only view)."""
        view = self._current.view()
        view.flags.writeable = False
        return view

    def push(self, mask: np.ndarray) -> None:
        """Make `mask` current; the previous one can be restored with `undo`."""
        self._undo.append(self._current)
        del self._undo[:-MAX_HISTORY]
        self._redo.clear()
        self._current = mask.astype(np.float32).copy()

    def replace(self, mask: np.ndarray) -> None:
        """Change the current mask without a new undo step (continuing a stroke)."""
        self._current = mask.astype(np.float32).copy()

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def undo(self) -> bool:
        """Go back one step; False when there is nothing to undo."""
        if not self._undo:
            return False
        self._redo.append(self._current)
        self._current = self._undo.pop()
        return True

    def redo(self) -> bool:
        """Re-apply an undone step; False when there is nothing to redo."""
        if not self._redo:
            return False
        self._undo.append(self._current)
        self._current = self._redo.pop()
        return True


def overlay_mask(image: np.ndarray, mask: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """The picture with its unknown pixels tinted (how the mask is shown).

    Args:
        image: [H, W, C] float32 in [0, 1], C in {1, 3}.
        mask: [H, W] float32, 1 = known.
        alpha: tint strength on unknown pixels.

    Returns:
        [H, W, 3] float32 in [0, 1]; known pixels unchanged (grey pictures as RGB).
    """
    rgb = np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image  # [H, W, 3]
    tint = np.array(UNKNOWN_TINT, np.float32)  # [3]
    unknown = (1.0 - mask)[:, :, None] * alpha  # [H, W, 1] in [0, alpha]
    return (rgb * (1.0 - unknown) + tint * unknown).astype(np.float32)
