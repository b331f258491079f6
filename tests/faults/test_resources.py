"""Cancel leaves nothing; a killed run's leftovers are swept by the next; steps that cannot fit are refused
before they start; outputs take the umask's permissions."""

from __future__ import annotations

import os
import stat

from .conftest import listing, stage


def _extract(d, out, **extra):
    return {"INPUT": [str(d["scene.tif"])], "LABELS": d["points.gpkg"], "CLASS_FIELD": "name", "OUTPUT": out, **extra}


def test_cancelled_extraction_leaves_nothing(world, tmp_path, fault):
    d = stage(world, tmp_path, "scene.tif", "points.gpkg")
    fault("extractsamples", _extract(d, tmp_path / "s.tfrecord.gz"), r"Cancelled", d.values(), cancel_at=1)


def test_cancelled_point_sampling_leaves_nothing(world, tmp_path, fault):
    d = stage(world, tmp_path, "polygons.gpkg")
    fault(
        "samplepoints",
        {"INPUT": d["polygons.gpkg"], "CLASS_FIELD": "name", "PER_CLASS": 50, "OUTPUT": tmp_path / "p.gpkg"},
        r"Cancelled",
        d.values(),
        cancel_at=1,
    )


def test_cancelled_prediction_leaves_nothing(world, tmp_path, fault):
    d = stage(world, tmp_path, "scene.tif", "rf.geodl")
    fault(
        "predict", {"INPUT": d["scene.tif"], "MODEL": d["rf.geodl"], "OUTPUT": tmp_path / "c.tif"}, r"Cancelled", d.values(), cancel_at=-1
    )


def test_leftovers_of_a_killed_run_are_removed_by_the_next(world, tmp_path, succeeds):
    d = stage(world, tmp_path, "scene.tif", "points.gpkg")
    dead = 4_194_000  # above any pid in use here
    stale = tmp_path / f".s.tfrecord.gz.{dead}.x1y2.part.gz"
    stale.write_bytes(b"half a file")
    succeeds("extractsamples", _extract(d, tmp_path / "s.tfrecord.gz"), d.values())
    assert not stale.exists()
    assert sorted(listing(tmp_path)) == ["points.gpkg", "s.tfrecord.gz", "s.tfrecord.gz.json", "scene.tif"]


def test_outputs_respect_the_umask(world, tmp_path, succeeds):
    d = stage(world, tmp_path, "scene.tif", "points.gpkg")
    old = os.umask(0o027)
    try:
        succeeds("extractsamples", _extract(d, tmp_path / "s.tfrecord.gz"), d.values())
    finally:
        os.umask(old)
    for name in ("s.tfrecord.gz", "s.tfrecord.gz.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o640, name
    old = os.umask(0o022)
    try:
        succeeds("predict", {"INPUT": d["scene.tif"], "MODEL": world / "rf.geodl", "OUTPUT": tmp_path / "c.tif"}, d.values())
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "c.tif").stat().st_mode) == 0o644


def test_patch_larger_than_the_raster(world, tmp_path, fault):
    d = stage(world, tmp_path, "scene.tif", "points.gpkg")
    fault(
        "extractsamples",
        _extract(d, tmp_path / "s.tfrecord.gz", PATCH_SIZE=1025),
        r"patch size 1025 is larger than the raster \(48×48",
        d.values(),
    )


def test_samples_that_cannot_fit_in_memory_are_refused_up_front(world, tmp_path, fault):
    """A 100,000² virtual raster and patches of 20,001²: terabytes, refused in a moment, before a pixel is read."""
    d = stage(world, tmp_path, "scene.tif", "points.gpkg")
    vrt = tmp_path / "huge.vrt"
    vrt.write_text(
        '<VRTDataset rasterXSize="100000" rasterYSize="100000"><SRS>EPSG:32621</SRS>'
        "<GeoTransform>720000, 30, 0, -2780000, 0, -30</GeoTransform>"
        + "".join(
            f'<VRTRasterBand dataType="UInt16" band="{b}"><SimpleSource><SourceFilename relativeToVRT="1">'
            f"scene.tif</SourceFilename><SourceBand>{b}</SourceBand></SimpleSource></VRTRasterBand>"
            for b in (1, 2, 3)
        )
        + "</VRTDataset>"
    )
    fault(
        "extractsamples",
        {"INPUT": [str(vrt)], "LABELS": d["points.gpkg"], "CLASS_FIELD": "name", "PATCH_SIZE": 20001, "OUTPUT": tmp_path / "s.tfrecord.gz"},
        r"needs about [\d,]+ MB of memory but only [\d,]+ MB is available\. Use a smaller patch size",
        [*d.values(), vrt],
    )
