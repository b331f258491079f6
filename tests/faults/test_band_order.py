"""Band order is checked at prediction: by name, reordered when the names allow (and said), refused when they
conflict; an explicit band order for rasters without names."""

from __future__ import annotations

import numpy as np
import rasterio

from .conftest import stage, write_scene


def _classes(path):
    with rasterio.open(path) as ds:
        return ds.read(1)


def test_reversed_bands_are_reordered_and_the_map_is_right(world, tmp_path, succeeds):
    d = stage(world, tmp_path, "rf.geodl")
    bgr = write_scene(tmp_path / "b432.tif", order=(2, 1, 0))  # described B4, B3, B2
    right = succeeds("predict", {"INPUT": world / "scene.tif", "MODEL": d["rf.geodl"], "OUTPUT": tmp_path / "a.tif"}, [bgr, d["rf.geodl"]])
    rec = succeeds("predict", {"INPUT": bgr, "MODEL": d["rf.geodl"], "OUTPUT": tmp_path / "b.tif"}, [bgr, d["rf.geodl"]])
    assert any("reordered" in w and "B4, B3, B2" in w for w in rec.warnings), rec.warnings
    assert not any("reordered" in w for w in right.warnings)
    assert np.array_equal(_classes(tmp_path / "a.tif"), _classes(tmp_path / "b.tif"))


def test_conflicting_band_names_are_refused(world, tmp_path, fault):
    d = stage(world, tmp_path, "rf.geodl")
    other = write_scene(tmp_path / "other.tif", names=("red", "green", "blue"))
    fault(
        "predict",
        {"INPUT": other, "MODEL": d["rf.geodl"], "OUTPUT": tmp_path / "c.tif"},
        r"named red, green, blue but the model was trained on B2, B3, B4.*BAND_ORDER",
        [other, d["rf.geodl"]],
    )


def test_unnamed_raster_with_an_explicit_band_order(world, tmp_path, succeeds):
    d = stage(world, tmp_path, "rf.geodl")
    bare = write_scene(tmp_path / "bare.tif", order=(2, 1, 0), names=())
    rec = succeeds(
        "predict", {"INPUT": bare, "MODEL": d["rf.geodl"], "BAND_ORDER": "B4,B3,B2", "OUTPUT": tmp_path / "b.tif"}, [bare, d["rf.geodl"]]
    )
    assert any("reordered" in w for w in rec.warnings)
    succeeds("predict", {"INPUT": world / "scene.tif", "MODEL": d["rf.geodl"], "OUTPUT": tmp_path / "a.tif"}, [bare])
    assert np.array_equal(_classes(tmp_path / "a.tif"), _classes(tmp_path / "b.tif"))


def test_unnamed_raster_without_band_order_says_it_was_not_checked(world, tmp_path, succeeds):
    d = stage(world, tmp_path, "rf.geodl")
    bare = write_scene(tmp_path / "bare.tif", names=())
    rec = succeeds("predict", {"INPUT": bare, "MODEL": d["rf.geodl"], "OUTPUT": tmp_path / "b.tif"}, [bare, d["rf.geodl"]])
    assert any("Band order not checked" in w and "BAND_ORDER" in w for w in rec.warnings), rec.warnings


def test_band_order_with_the_wrong_count_is_refused(world, tmp_path, fault):
    d = stage(world, tmp_path, "rf.geodl")
    bare = write_scene(tmp_path / "bare.tif", names=())
    fault(
        "predict",
        {"INPUT": bare, "MODEL": d["rf.geodl"], "BAND_ORDER": "B4,B3", "OUTPUT": tmp_path / "c.tif"},
        r"2 band names were given .* 3 band",
        [bare, d["rf.geodl"]],
    )


def test_extra_bands_are_selected_by_name(world, tmp_path, succeeds):
    from tests.core.synthetic import write_raster

    from .conftest import scene_array

    d = stage(world, tmp_path, "rf.geodl")
    data = np.concatenate([scene_array()[::-1], np.full((1, 48, 48), 500, np.uint16)])  # B4 B3 B2 B8
    path = write_raster(tmp_path / "four.tif", data, nodata=0)
    from osgeo import gdal

    ds = gdal.Open(str(path), gdal.GA_Update)
    for i, n in enumerate(("B4", "B3", "B2", "B8"), start=1):
        ds.GetRasterBand(i).SetDescription(n)
    ds = None
    rec = succeeds("predict", {"INPUT": path, "MODEL": d["rf.geodl"], "OUTPUT": tmp_path / "b.tif"}, [path, d["rf.geodl"]])
    assert any("selected" in w for w in rec.warnings), rec.warnings
    succeeds("predict", {"INPUT": world / "scene.tif", "MODEL": d["rf.geodl"], "OUTPUT": tmp_path / "a.tif"}, [path])
    assert np.array_equal(_classes(tmp_path / "a.tif"), _classes(tmp_path / "b.tif"))


def test_repeated_band_names_are_refused(world, tmp_path, fault):
    d = stage(world, tmp_path, "rf.geodl")
    dup = write_scene(tmp_path / "dup.tif", names=("B2", "B2", "B4"))
    fault("predict", {"INPUT": dup, "MODEL": d["rf.geodl"], "OUTPUT": tmp_path / "c.tif"}, "repeat", [dup, d["rf.geodl"]])
