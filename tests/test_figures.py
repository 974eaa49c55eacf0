"""figures: the toy density picture (pixels where the modes are), scatter panels, sample grids, inpainting rows."""

import numpy as np
import pytest
from PIL import Image

from ncsn_tf import figures, toy


def test_toy_density_picture_puts_the_modes_where_they_are():
    points = np.concatenate([np.full((20, 2), -5.0), np.full((80, 2), 5.0)]).astype(np.float32)  # [100, 2]
    picture = figures.toy_density_picture(points)[0, :, :, 0]  # [N, N] in [0, 1], 0 = densest
    n = figures.TOY_DENSITY_BINS  # pixel k covers [-10 + 20k/n, -10 + 20(k+1)/n)
    up_right, down_left = (n // 4 - 1, 3 * n // 4), (3 * n // 4 - 1, n // 4)  # (row, col) of (5, 5), (-5, -5); y up
    assert picture[up_right] == 0.0
    assert picture[down_left] == pytest.approx(1 - np.sqrt(20 / 80))
    assert np.count_nonzero(picture < 1) == 2


def test_toy_density_picture_of_no_visible_points_is_white():
    picture = figures.toy_density_picture(np.full((5, 2), 50.0), bins=8)  # all outside [-10, 10]^2
    assert picture.shape == (1, 8, 8, 1) and picture.dtype == np.float32
    np.testing.assert_array_equal(picture, 1.0)


def test_points_and_toy_figures_have_one_panel_per_set(tmp_path):
    rng = np.random.default_rng(0)
    panels = {name: rng.standard_normal((50, 2)) + toy.MEANS[1] for name in ("iid", "langevin", "annealed")}
    one = Image.open(figures.save_points_figure({"iid": panels["iid"]}, tmp_path / "one.png"))
    path = figures.save_toy_figure(
        panels, {name: 0.2 for name in panels}, tmp_path / "sub" / "toy.png", mode_name="(-5,-5)"
    )
    three = Image.open(path)
    assert three.size[1] == one.size[1] and three.size[0] == pytest.approx(3 * one.size[0], rel=0.02)
    with pytest.raises(KeyError):  # a panel without a title is a mistake, not a silent default
        figures.save_toy_figure({"other": panels["iid"]}, {"other": 0.1}, tmp_path / "x.png", mode_name="m")


def test_samples_picture_is_a_grid_of_images_or_a_scatter_of_points(tmp_path):
    images = np.random.default_rng(0).uniform(-0.5, 1.5, (120, 8, 8, 1)).astype(np.float32)  # not clipped
    grid = Image.open(figures.save_samples_picture(images, "digits", tmp_path / "digits.png"))
    side = 10 * (8 + 1) + 1  # the first GRID_IMAGES = 100 images, 10 x 10 with 1 px padding
    assert grid.size == (4 * side, 4 * side) and grid.mode == "L"  # upscaled 4x: 8 px images to 32 px
    points = figures.save_samples_picture(np.zeros((10, 2)), "toy", tmp_path / "toy.png")
    assert (
        Image.open(points).size
        == Image.open(figures.save_points_figure({"s": np.zeros((3, 2))}, tmp_path / "p.png")).size
    )


def test_inpainting_figure_has_a_row_per_mask(tmp_path):
    batch = np.random.default_rng(0).uniform(0, 1, (3 * 4, 8, 8, 1))
    one = Image.open(figures.save_inpainting_figure([("a", batch)], tmp_path / "one.png", columns=4))
    two = Image.open(figures.save_inpainting_figure([("a", batch), ("b", batch)], tmp_path / "two.png", columns=4))
    assert two.size[0] == one.size[0] and two.size[1] == 2 * one.size[1]
