"""Figures of samples: image grids, the toy mixture's scatter plots and density picture, inpainting rows.

The one place that draws samples for people: the trainer's sample pictures, the
evaluation's `samples.png` and the paper experiments' figures (Figure 3 of the toy,
the inpainting figure) all come from here. matplotlib is imported only by the
functions that plot, with the non-interactive Agg backend.

References:
    Song & Ermon 2019, Section 3.2 and Figure 3 (toy), Section 5.3 (inpainting).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

TOY_EXTENT = 10.0  # toy pictures show [-10, 10]^2 (modes at +-5, chains start in [-8, 8]^2)
TOY_DENSITY_BINS = 128  # pixels per side of the toy density picture
GRID_IMAGES = 100  # images in an evaluation's sample grid
FIGURE_DPI = 110


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure: Any, path: str | os.PathLike[str]) -> str:
    """Write a matplotlib figure as PNG (creating the folder) and close it; returns the path."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=FIGURE_DPI)
    _pyplot().close(figure)
    return os.fspath(path)


def toy_density_picture(points: np.ndarray, extent: float = TOY_EXTENT, bins: int = TOY_DENSITY_BINS) -> np.ndarray:
    """A 2-D histogram of toy points as one grayscale image (dark = dense), y axis up.

    Pixel (row r, column k) counts the points with x in [-extent + 2 extent k / bins, ...)
    and y in the r-th bin from the top; the value is 1 - sqrt(count / max count).

    Args:
        points: [N, 2] toy points; points outside [-extent, extent]^2 are not shown.
        extent: half-width of the square shown.
        bins: pixels per side.

    Returns:
        [1, bins, bins, 1] float32 in [0, 1] (0 = the densest pixel), ready for `images.save_grid`.
    """
    edges = np.linspace(-extent, extent, bins + 1)
    counts, _, _ = np.histogram2d(points[:, 1], points[:, 0], bins=(edges, edges))  # [bins rows = y, bins cols = x]
    density = np.sqrt(counts / max(counts.max(), 1.0))[::-1]  # [bins, bins] in [0, 1], y up
    return (1.0 - density)[None, :, :, None].astype(np.float32)  # [1, bins, bins, 1]


def save_points_figure(
    panels: dict[str, np.ndarray],
    path: str | os.PathLike[str],
    extent: float = TOY_EXTENT,
    titles: dict[str, str] | None = None,
) -> str:
    """Scatter plots of 2-D point sets side by side (one panel per entry), written as PNG.

    Args:
        panels: {name: [N, 2] points}, in panel order.
        path: the PNG file (folders are created).
        extent: every panel shows [-extent, extent]^2.
        titles: {name: title}; default the names.

    Returns:
        The path written.
    """
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.4), squeeze=False)
    for axis, (name, points) in zip(axes[0], panels.items(), strict=True):
        axis.scatter(points[:, 0], points[:, 1], s=2, alpha=0.5, color="tab:blue", rasterized=True)
        axis.set_xlim(-extent, extent)
        axis.set_ylim(-extent, extent)
        axis.set_aspect("equal")
        axis.set_title((titles or {}).get(name, name), fontsize=9)
        axis.tick_params(labelsize=7)
    figure.tight_layout()
    return _save(figure, path)


def save_samples_picture(samples: np.ndarray, dataset: str, path: str | os.PathLike[str]) -> str:
    """A PNG of samples: an image grid (the first `GRID_IMAGES`, clipped), or a scatter plot of toy points.

    Args:
        samples: [N, H, W, C] images or [N, 2] toy points (not clipped).
        dataset: the data set ("toy" = points).
        path: the PNG file.

    Returns:
        The path written.
    """
    if dataset == "toy":
        return save_points_figure({"samples": samples}, path)
    from ncsn_tf.images import save_grid

    return save_grid(samples[:GRID_IMAGES], path)


FIGURE3_TITLES = {
    "iid": "i.i.d. samples",
    "langevin": "Langevin, exact scores",
    "annealed": "annealed Langevin, exact scores",
    "learned": "annealed Langevin, learned ({steps} steps)",
}


def save_toy_figure(
    panels: dict[str, np.ndarray],
    small_mode_weights: dict[str, float],
    path: str | os.PathLike[str],
    *,
    mode_name: str,
    learned_steps: int | None = None,
) -> str:
    """The paper's Figure 3: one scatter panel per sampler, titled with its weight of the small mode.

    Args:
        panels: {"iid", "langevin", "annealed", ["learned"]} -> [N, 2] points.
        small_mode_weights: {panel: measured weight of the small mode}.
        path: the PNG file.
        mode_name: how the small mode is named in the titles, e.g. "(-5,-5)".
        learned_steps: training steps of the learned score (its panel's title).

    Returns:
        The path written.
    """
    titles = {
        name: f"{FIGURE3_TITLES[name].format(steps=learned_steps)}\n"
        f"weight of {mode_name}: {small_mode_weights[name]:.3f}"
        for name in panels
    }
    return save_points_figure(panels, path, titles=titles)


def save_inpainting_figure(rows: Sequence[tuple[str, np.ndarray]], path: str | os.PathLike[str], columns: int) -> str:
    """Rows of image grids with a title each (the inpainting figure: input / inpainted / original).

    Args:
        rows: (title, [3 * columns, H, W, 1] images in [0, 1]) per row of the figure.
        path: the PNG file.
        columns: images per grid row.

    Returns:
        The path written.
    """
    from ncsn_tf.images import make_grid

    plt = _pyplot()
    figure, axes = plt.subplots(len(rows), 1, figsize=(columns * 0.55, 2.0 * len(rows)))
    for axis, (title, batch) in zip(np.atleast_1d(axes), rows, strict=True):
        axis.imshow(make_grid(np.clip(batch, 0, 1), ncols=columns)[..., 0], cmap="gray", vmin=0, vmax=1)
        axis.set_title(title, fontsize=8)
        axis.axis("off")
    figure.tight_layout()
    return _save(figure, path)
