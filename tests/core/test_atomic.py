"""Write-then-rename (core/io/atomic.py): the temporary name is reserved but left for the writer to create, so
no writer truncates a file first; what a block writes arrives whole, or nothing does."""

from __future__ import annotations

import numpy as np
import pytest

from geodl_plugin.core.io.atomic import atomic_path


def _parts(folder):
    return sorted(p.name for p in folder.iterdir() if ".part" in p.name)


def test_the_temporary_name_is_not_yet_a_file_and_the_result_arrives_whole(tmp_path):
    target = tmp_path / "out.txt"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".out.txt.") and tmp.name.endswith(".part.txt")
        assert not tmp.exists()  # a writer that truncated mkstemp's empty file made ext4 flush it on close
        tmp.write_text("done", encoding="utf-8")
        assert not target.exists()
    assert target.read_text(encoding="utf-8") == "done"
    assert _parts(tmp_path) == []


def test_a_block_that_writes_nothing_leaves_an_empty_file(tmp_path):
    target = tmp_path / "empty.txt"
    with atomic_path(target):
        pass
    assert target.exists() and target.stat().st_size == 0
    assert _parts(tmp_path) == []


def test_a_failed_block_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "kept.txt"
    target.write_text("old", encoding="utf-8")
    with pytest.raises(RuntimeError, match="half way"), atomic_path(target) as tmp:
        tmp.write_text("half", encoding="utf-8")
        raise RuntimeError("half way")
    assert target.read_text(encoding="utf-8") == "old"
    assert _parts(tmp_path) == []


def test_gdal_creates_the_raster_itself(tmp_path):
    from osgeo import gdal

    gdal.UseExceptions()
    target = tmp_path / "map.tif"
    with atomic_path(target) as tmp:
        ds = gdal.GetDriverByName("GTiff").Create(str(tmp), 8, 8, 1, gdal.GDT_Byte, ["TILED=YES", "BLOCKXSIZE=16", "BLOCKYSIZE=16"])
        ds.WriteArray(np.arange(64, dtype=np.uint8).reshape(8, 8))
        ds = None
    ds = gdal.Open(str(target))
    assert np.array_equal(ds.ReadAsArray(), np.arange(64, dtype=np.uint8).reshape(8, 8))
    ds = None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map.tif"]
