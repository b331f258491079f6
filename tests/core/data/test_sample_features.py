"""The per-Example steps the chip, series, class and regression readers share: a label (one value or k×k)
to a mask, the band order with its missing-band error, the optional coordinates; and the grid test that the
stack, series and chip readers apply to their rasters and masks."""

from __future__ import annotations

import numpy as np
import pytest

from geodl_plugin.core.data.chips import IGNORE, label_mask
from geodl_plugin.core.data.samples import example_bands, example_xy
from geodl_plugin.core.io.raster import RasterInfo, same_grid
from geodl_plugin.core.runtime.errors import GeoDLError


def test_one_value_labels_only_the_centre_pixel():
    mask = label_mask(np.array([2.0], np.float32), 5, "The label of sample 0")
    assert mask.dtype == np.uint8 and mask.shape == (5, 5)
    assert mask[2, 2] == 2
    assert (np.delete(mask.ravel(), 12) == IGNORE).all()


def test_k_by_k_values_keep_class_ids_and_unlabel_the_rest():
    values = np.array([0, 1, 3, np.nan, -1, 255, 300, 254, 7], np.float32)
    mask = label_mask(values, 3, "The label 'class' of chip 0")
    assert mask.dtype == np.uint8
    assert mask.tolist() == [[0, 1, 3], [IGNORE, IGNORE, IGNORE], [IGNORE, 254, 7]]


def test_a_label_of_another_size_names_the_sample_and_both_sizes():
    with pytest.raises(GeoDLError, match=r"^The label 'class' of chip 3 has 4 values; expected 1 or 25\.$"):
        label_mask(np.zeros(4, np.float32), 5, "The label 'class' of chip 3")


def test_coordinates_are_optional():
    assert example_xy({"x": np.array([10.5]), "y": np.array([-2.0]), "class": np.array([1.0])}) == (10.5, -2.0)
    assert example_xy({"x": np.array([10.5]), "class": np.array([1.0])}) is None


def test_band_order_given_or_sorted_without_label_and_coordinates():
    example = {"B2": np.zeros(1), "B1": np.zeros(1), "class": np.zeros(1), "x": np.zeros(1), "y": np.zeros(1)}
    assert example_bands(example, 0, [], "class") == ["B1", "B2"]
    assert example_bands(example, 0, ["B2", "B1"], "class") == ["B2", "B1"]
    with pytest.raises(GeoDLError, match=r"^Chip 4 lacks the band\(s\) \['B3'\]; it has \['B1', 'B2', 'class', 'x', 'y'\]\.$"):
        example_bands(example, 4, ["B1", "B3"], "class", "Chip")


def test_same_grid_tolerates_rounding_but_not_a_shift_or_another_size():
    def info(width: int, transform: tuple[float, float, float, float, float, float]) -> RasterInfo:
        return RasterInfo("r.tif", width, 8, 1, "float32", "", transform, None, ("b1",), False, "metre")

    grid = (10.0, 0.0, 500000.0, 0.0, -10.0, 4600000.0)
    assert same_grid(info(8, (10.0, 0.0, 500000.0 + 1e-4, 0.0, -10.0, 4600000.0)), info(8, grid))
    assert not same_grid(info(8, (10.0, 0.0, 500005.0, 0.0, -10.0, 4600000.0)), info(8, grid))
    assert not same_grid(info(9, grid), info(8, grid))
