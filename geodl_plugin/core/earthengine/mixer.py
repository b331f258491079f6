"""Earth Engine TFRecord image exports ↔ georeferenced rasters.

An image export is ``PREFIX-00000.tfrecord.gz …`` plus ``PREFIX-mixer.json``. Each record is one patch of
``patchDimensions`` plus ``kernelSize/2`` margin on every side, one float feature per band (H·W values,
row-major); the patches run row-major, ``patchesPerRow`` to a row, across the sorted files; the mixer's affine
is the top-left corner of the first *core* patch. :func:`export_to_geotiff` mosaics the cores into a GeoTIFF
(seed 004's tfrecord2tif); :func:`raster_to_upload_tfrecord` cuts a raster on the same grid back into patches
(margins cropped, as ``earthengine upload image`` expects them) for ingestion.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np

from ..io.atomic import atomic_path
from ..io.tfrecord import TFRecordWriter, read_examples
from ..runtime.errors import GeoDLError
from ..runtime.progress import Progress, ensure
from .grid import NODATA, float_geotiff_profile


@dataclass(frozen=True)
class Mixer:
    crs: str
    affine: tuple[float, float, float, float, float, float]  # a b c d e f: x = a·col + b·row + c, y = d·col + e·row + f
    patch_width: int
    patch_height: int
    patches_per_row: int
    total_patches: int

    @property
    def rows_of_patches(self) -> int:
        return math.ceil(self.total_patches / self.patches_per_row)

    @property
    def width(self) -> int:
        return self.patches_per_row * self.patch_width

    @property
    def height(self) -> int:
        return self.rows_of_patches * self.patch_height

    def transform(self):  # rasterio.Affine
        from rasterio.transform import Affine

        return Affine(*self.affine)

    def to_json(self) -> dict:
        return {
            "projection": {"crs": self.crs, "affine": {"doubleMatrix": list(self.affine)}},
            "patchDimensions": [self.patch_width, self.patch_height],
            "patchesPerRow": self.patches_per_row,
            "totalPatches": self.total_patches,
        }


def read_mixer(path: str | os.PathLike) -> Mixer:
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
        projection = data["projection"]
        crs = projection.get("crs") or projection.get("wkt")
        affine = tuple(float(v) for v in projection["affine"]["doubleMatrix"])
        width, height = (int(v) for v in data["patchDimensions"])
        mixer = Mixer(crs, affine, width, height, int(data["patchesPerRow"]), int(data["totalPatches"]))  # type: ignore[arg-type]
    except FileNotFoundError as exc:
        raise GeoDLError(f"The mixer file '{p}' does not exist; download PREFIX-mixer.json with the export.") from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise GeoDLError(
            f"'{p}' is not an Earth Engine mixer file ({exc!r} missing or invalid); it needs projection.crs, "
            "projection.affine.doubleMatrix, patchDimensions, patchesPerRow and totalPatches."
        ) from exc
    if len(mixer.affine) != 6 or mixer.patches_per_row < 1 or mixer.total_patches < 1 or mixer.patch_width < 1:
        raise GeoDLError(f"The mixer file '{p}' has an invalid grid: {data}.")
    return mixer


def find_export(folder: str | os.PathLike, prefix: Optional[str] = None) -> tuple[list[Path], Path]:
    """The sorted TFRecord files and the mixer of one image export in ``folder``."""
    folder = Path(folder)
    mixers = sorted(folder.glob(f"{prefix}-mixer.json" if prefix else "*-mixer.json"))
    if not mixers:
        raise GeoDLError(
            f"No '{prefix or '*'}-mixer.json' in '{folder}'. Download the whole export (the .tfrecord.gz files and "
            "the mixer JSON) into one folder."
        )
    if len(mixers) > 1:
        raise GeoDLError(f"'{folder}' holds several exports ({', '.join(m.name for m in mixers)}); name the export prefix.")
    mixer = mixers[0]
    stem = mixer.name[: -len("-mixer.json")]
    pattern = re.compile(re.escape(stem) + r"(-\d+)?\.tfrecord(\.gz)?$")
    files = sorted(p for p in folder.iterdir() if pattern.fullmatch(p.name))
    if not files:
        raise GeoDLError(f"'{folder}' has the mixer {mixer.name} but no {stem}-NNNNN.tfrecord.gz files; download them.")
    return files, mixer


def _kernel_from_length(length: int, mixer: Mixer) -> int:
    # (pw + k)(ph + k) = length, square margins: solve the quadratic for k.
    pw, ph = mixer.patch_width, mixer.patch_height
    k = (-(pw + ph) + math.sqrt((pw - ph) ** 2 + 4 * length)) / 2
    if k < 0 or abs(k - round(k)) > 1e-6:
        raise GeoDLError(
            f"A patch has {length} values per band, which does not fit patchDimensions {pw}×{ph} with any "
            "kernelSize margin. Is the mixer from the same export?"
        )
    return int(round(k))


def iter_patches(
    files: Sequence[Path], mixer: Mixer, bands: Optional[Sequence[str]] = None, kernel_size: Optional[int] = None
) -> Iterator[tuple[int, np.ndarray, list[str]]]:
    """Yield (index, array bands×ph×pw with margins cropped, band names) in the export's row-major order."""
    pw, ph = mixer.patch_width, mixer.patch_height
    names: Optional[list[str]] = list(bands) if bands else None
    for index, example in enumerate(read_examples(files)):
        if names is None:
            names = sorted(k for k, v in example.items() if isinstance(v, np.ndarray))
        k = kernel_size
        first = example.get(names[0])
        if first is None:
            raise GeoDLError(f"Patch {index} has no band '{names[0]}'; it has {', '.join(sorted(example))}.")
        if k is None:
            k = _kernel_from_length(len(first), mixer)
        full_w, full_h = pw + k, ph + k
        half = k // 2
        cores = []
        for name in names:
            values = example.get(name)
            if values is None:
                raise GeoDLError(f"Patch {index} has no band '{name}'; it has {', '.join(sorted(example))}.")
            if len(values) != full_w * full_h:
                raise GeoDLError(
                    f"Patch {index}, band {name}: {len(values)} values, expected {full_w}×{full_h} "
                    f"(patch {pw}×{ph} + kernel {k}). Check the kernel size."
                )
            patch = np.asarray(values, dtype=np.float32).reshape(full_h, full_w)
            cores.append(patch[half : half + ph, half : half + pw])
        yield index, np.stack(cores), names


def read_export(
    files: Sequence[Path],
    mixer: Mixer,
    bands: Optional[Sequence[str]] = None,
    kernel_size: Optional[int] = None,
    progress: Optional[Progress] = None,
) -> tuple[np.ndarray, list[str]]:
    """The whole export as one bands×H×W float32 array on the mixer's grid."""
    progress = ensure(progress)
    out: Optional[np.ndarray] = None
    names: list[str] = []
    count = 0
    pw, ph, per_row = mixer.patch_width, mixer.patch_height, mixer.patches_per_row
    for index, core, patch_names in iter_patches(files, mixer, bands, kernel_size):
        names = patch_names
        if index >= mixer.total_patches:
            count = index + 1
            continue  # counted, reported below
        if out is None:
            out = np.full((core.shape[0], mixer.height, mixer.width), np.nan, dtype=np.float32)
        row, col = divmod(index, per_row)
        out[:, row * ph : (row + 1) * ph, col * pw : (col + 1) * pw] = core
        count = index + 1
        if index % 64 == 0:
            progress.check()
            progress.update(100.0 * count / mixer.total_patches)
    if count != mixer.total_patches:
        raise GeoDLError(
            f"The mixer says totalPatches = {mixer.total_patches}, but the {len(files)} TFRecord file(s) hold "
            f"{count} patches. Download all the export's files (a file is missing or extra) and use the mixer of "
            "the same export."
        )
    assert out is not None
    return out, names


def export_to_geotiff(
    folder: str | os.PathLike,
    out_path: str | os.PathLike,
    prefix: Optional[str] = None,
    bands: Optional[Sequence[str]] = None,
    kernel_size: Optional[int] = None,
    progress: Optional[Progress] = None,
) -> Path:
    """Mosaic a downloaded TFRecord image export into a georeferenced float32 GeoTIFF (band descriptions =
    band names). ``kernel_size`` is inferred from the record length when not given. Pixels Earth Engine
    filled as masked (``grid.NODATA``, see ``exports.export_image_patches``) and the padding past the last
    patch are the file's nodata, ``grid.NODATA`` (finite, so the file can go back to Earth Engine as is)."""
    import rasterio

    progress = ensure(progress)
    files, mixer_path = find_export(folder, prefix)
    mixer = read_mixer(mixer_path)
    array, names = read_export(files, mixer, bands, kernel_size, progress.sub(0, 90))
    array[~np.isfinite(array)] = NODATA
    with atomic_path(out_path) as tmp:
        profile = float_geotiff_profile(mixer.width, mixer.height, array.shape[0], mixer.crs, mixer.transform())
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(array)
            for i, name in enumerate(names, start=1):
                dst.set_band_description(i, name)
    progress.update(100, f"Wrote {out_path} ({mixer.width}×{mixer.height}, {len(names)} bands)")
    return Path(out_path)


def array_to_patches(array: np.ndarray, mixer: Mixer) -> Iterator[np.ndarray]:
    """Cut a bands×H×W array on the mixer's grid into core patches, in the export's order."""
    pw, ph = mixer.patch_width, mixer.patch_height
    for index in range(mixer.total_patches):
        row, col = divmod(index, mixer.patches_per_row)
        yield array[:, row * ph : (row + 1) * ph, col * pw : (col + 1) * pw]


def write_upload_tfrecord(
    array: np.ndarray,
    mixer: Mixer,
    out_path: str | os.PathLike,
    band_names: Sequence[str],
    progress: Optional[Progress] = None,
) -> Path:
    """Write predictions (bands×H×W on the mixer's grid) as one Example per core patch, in the mixer's order,
    feature keys = band names: what Earth Engine's TFRecord image upload reads back with the mixer."""
    progress = ensure(progress)
    if array.ndim == 2:
        array = array[None]
    if array.shape[0] != len(band_names):
        raise GeoDLError(f"{array.shape[0]} prediction band(s) but {len(band_names)} band name(s); give one name per band.")
    if array.shape[1:] != (mixer.height, mixer.width):
        raise GeoDLError(
            f"The predictions are {array.shape[2]}×{array.shape[1]} pixels but the mixer's grid is "
            f"{mixer.width}×{mixer.height}. Predict on the raster made from the same export."
        )
    with atomic_path(out_path) as tmp:
        with TFRecordWriter(tmp, compress=str(out_path).endswith(".gz")) as writer:
            for index, patch in enumerate(array_to_patches(array, mixer)):
                writer.write({name: np.ascontiguousarray(patch[i], dtype=np.float32).ravel() for i, name in enumerate(band_names)})
                if index % 64 == 0:
                    progress.check()
                    progress.update(100.0 * (index + 1) / mixer.total_patches)
    return Path(out_path)


def raster_to_upload_tfrecord(
    raster_path: str | os.PathLike,
    mixer_path: str | os.PathLike,
    out_path: str | os.PathLike,
    band_names: Optional[Sequence[str]] = None,
    progress: Optional[Progress] = None,
) -> Path:
    """A prediction GeoTIFF on an export's grid → upload TFRecord (checks the grid matches the mixer). NaN
    pixels (a NaN-nodata confidence map) are written as ``grid.NODATA``; declare :func:`upload_nodata` of the
    raster as the upload's missing data so they stay masked in the asset."""
    import rasterio

    mixer = read_mixer(mixer_path)
    with rasterio.open(raster_path) as src:
        if (src.width, src.height) != (mixer.width, mixer.height) or not src.transform.almost_equals(mixer.transform()):
            raise GeoDLError(
                f"'{raster_path}' ({src.width}×{src.height}, origin {src.transform.c}, {src.transform.f}) is not on "
                f"the export's grid ({mixer.width}×{mixer.height}, origin {mixer.affine[2]}, {mixer.affine[5]}). "
                "Predict on the GeoTIFF made from this export, without cropping or reprojecting."
            )
        array = src.read()
        names = list(band_names) if band_names else [d or f"b{i + 1}" for i, d in enumerate(src.descriptions)]
    if array.dtype.kind == "f":
        array[~np.isfinite(array)] = NODATA
    return write_upload_tfrecord(array, mixer, out_path, names, progress)


def upload_nodata(raster_path: str | os.PathLike) -> Optional[float]:
    """The missing-data value to declare for a raster's upload: its nodata, or ``grid.NODATA`` when that is
    NaN (rewritten so, since Earth Engine's requests are JSON, which has no NaN); None without nodata."""
    import rasterio

    with rasterio.open(raster_path) as src:
        nodata = src.nodata
    if nodata is None:
        return None
    return float(nodata) if math.isfinite(nodata) else NODATA
