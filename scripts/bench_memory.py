"""Memory of a windowed prediction: the peak resident memory of classifying a large raster, against the size
of the raster itself and of its outputs.

The large rasters are the Landsat sample scene repeated n×n through a VRT (no copy on disk): 2×2 (15 Mpx)
and 6×6 (137 Mpx, 780 MiB of pixels) by default. Each measurement runs in a fresh process and reads its peak
resident set size (``ru_maxrss``): one process only loads the model (TensorFlow included), the others also
predict a raster (class + confidence, with overviews); the difference is what the prediction itself needs.
Windowed prediction needs a few blocks and one tile row of each overview level, not the raster: the figure
must not grow with the raster's area.

Usage: ``python scripts/bench_memory.py [--model M] [--repeat 2 6]``; ``make bench`` calls it after
``bench.py`` has trained the bench model.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCENE = REPO / "data" / "sample" / "LC08_L1TP_224078_20200518_20200518_01_RT.TIF"

CHILD = """
import json, resource, sys, time
import numpy as np
sys.path.insert(0, {repo!r})
from geodl_plugin.core.models.model_file import load_model_file
from geodl_plugin.core.families import predict_raster
from geodl_plugin.core.predict.raster_prediction import PredictParams
bundle = load_model_file({model!r})
bundle.classify(np.zeros((16, len(bundle.bands)), "float32"))  # the model compiled, as for a run
out = {{}}
if {predict!r}:
    started = time.perf_counter()
    # the mosaic's bands carry no names: given in the model's order, as a user would (BAND_ORDER)
    params = PredictParams([{raster!r}], {model!r}, {output!r}, {confidence!r}, nodata=0, band_order=bundle.bands)
    result = predict_raster(params, bundle=bundle)
    out["seconds"] = time.perf_counter() - started
    out["raster_pixels"] = result.raster_pixels
out["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def mosaic_vrt(scene: Path, path: Path, repeat: int) -> tuple[int, int, int]:
    """A VRT showing ``scene`` ``repeat``×``repeat`` times side by side; returns (width, height, bands)."""
    import rasterio

    with rasterio.open(scene) as ds:
        width, height, count, dtype = ds.width, ds.height, ds.count, ds.dtypes[0]
        t = ds.transform
        crs = ds.crs.to_wkt()
    gdal_type = {"uint16": "UInt16", "uint8": "Byte", "int16": "Int16", "float32": "Float32"}[dtype]
    bands = []
    for b in range(1, count + 1):
        sources = "".join(
            f'<SimpleSource><SourceFilename relativeToVRT="0">{scene}</SourceFilename><SourceBand>{b}</SourceBand>'
            f'<SrcRect xOff="0" yOff="0" xSize="{width}" ySize="{height}"/>'
            f'<DstRect xOff="{i * width}" yOff="{j * height}" xSize="{width}" ySize="{height}"/></SimpleSource>'
            for j in range(repeat)
            for i in range(repeat)
        )
        bands.append(f'<VRTRasterBand dataType="{gdal_type}" band="{b}"><NoDataValue>0</NoDataValue>{sources}</VRTRasterBand>')
    xml = (
        f'<VRTDataset rasterXSize="{width * repeat}" rasterYSize="{height * repeat}">'
        f"<SRS>{crs.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')}</SRS>"
        f"<GeoTransform>{t.c}, {t.a}, {t.b}, {t.f}, {t.d}, {t.e}</GeoTransform>{''.join(bands)}</VRTDataset>"
    )
    path.write_text(xml, encoding="utf-8")
    return width * repeat, height * repeat, count


def child(repo: Path, model: Path, raster: Path, out: Path, predict: bool) -> dict:
    code = CHILD.format(
        repo=str(repo),
        model=str(model),
        raster=str(raster),
        output=str(out / "class.tif"),
        confidence=str(out / "confidence.tif"),
        predict=predict,
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=REPO / "bench-output" / "model.geodl")
    parser.add_argument("--scene", type=Path, default=SCENE)
    parser.add_argument("--repeat", type=int, nargs="+", default=[2, 6], help="copies of the scene along each axis, one measurement each")
    args = parser.parse_args()
    if not args.model.exists():
        print(f"no model at {args.model}: run scripts/bench.py first")
        return 1
    rows = []
    with tempfile.TemporaryDirectory(prefix="geodl-bench-memory-") as tmp:
        work = Path(tmp)
        base = child(REPO, args.model, SCENE, work, predict=False)
        for repeat in args.repeat:
            width, height, bands = mosaic_vrt(args.scene.resolve(), work / "mosaic.vrt", repeat)
            run = child(REPO, args.model, work / "mosaic.vrt", work, predict=True)
            rows.append((width, height, bands, run, run["peak_mib"] - base["peak_mib"]))
    print(
        f"peak memory of a process with the model loaded (TensorFlow, compiled): {base['peak_mib']:.0f} MiB; what a prediction adds to it:"
    )
    for width, height, bands, run, needed in rows:
        pixels = width * height
        print(
            f"  {width:>6}×{height:<6} px {pixels / 1e6:6.1f} Mpx  raster {pixels * bands * 2 / 2**20:6.0f} MiB, "
            f"outputs {pixels * 5 / 2**20:6.0f} MiB uncompressed  →  prediction {needed:5.0f} MiB  "
            f"({run['raster_pixels'] / 1e6 / run['seconds']:.1f} Mpx/s through the VRT)"
        )
    if len(rows) > 1:
        (w0, h0, *_, m0), (w1, h1, *_, m1) = rows[0], rows[-1]
        print(
            f"  the raster grew {w1 * h1 / (w0 * h0):.0f}×, the prediction's memory {m1 / m0:.2f}× "
            "(windowed: it grows with the raster's width, one row of blocks, not with its area)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
