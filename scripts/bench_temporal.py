"""Temporal (ConvGRU) model speed on this machine: tiled prediction over a series and training throughput,
each next to its compute bound.

- **Achieved FLOP/s**: a large float32 matmul, the faster of NumPy's BLAS and ``keras.ops`` (all cores), timed
  in rounds interleaved with the prediction and the training it bounds, best of each (``bench_timing.py``).
- **Tiled prediction**: ``predict_series`` over a synthetic series (``make_synthetic_series.py``, 18 dates ×
  4 bands) with an untrained model file (speed does not depend on the weights). Compute bound = the
  network's FLOPs per tile (every date, both directions: ``temporal_flops``) × tiles run ÷ the matmul rate.
- **Training**: samples/s of ``fit`` on patch sequences, and the bound: 3 × forward FLOPs per sample (forward
  + backward) ÷ the matmul rate.

Usage: ``python scripts/bench_temporal.py [--size 256] [--tile 96] [--filters 16] [--json OUT]``; ``make
bench`` calls it. Set ``KERAS_BACKEND=torch`` to measure the torch backend.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from geodl_plugin.core.runtime.tensorflow_env import tensorflow_environment  # noqa: E402
from geodl_plugin.core.train.trainer import TrainParams  # noqa: E402

tensorflow_environment(os.environ)  # before TensorFlow is imported: the worker's settings
sys.path.insert(0, str(REPO / "scripts"))


def main(argv: list[str] | None = None) -> int:  # noqa: PLR0915 - one linear measurement script
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="scene size in pixels (square)")
    parser.add_argument("--tile", type=int, default=96)
    parser.add_argument("--overlap", type=int, default=16)
    parser.add_argument("--batch", type=int, default=4, help="tiles per batch")
    parser.add_argument("--encoder", default="gru")
    parser.add_argument("--filters", type=int, default=16)
    parser.add_argument("--patch", type=int, default=24, help="training patch size")
    parser.add_argument("--samples", type=int, default=128, help="training samples")
    parser.add_argument("--train-batch", type=int, default=TrainParams.batch_size, help="default: training's own")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (each case's best counts)")
    parser.add_argument("--json", default=None, help="also write the figures as JSON here")
    args = parser.parse_args(argv)

    import keras
    from bench_timing import interleaved, load_average, matmul_cases, matmul_rate
    from make_synthetic_series import BANDS, CLASS_NAMES, make_series_scene

    from geodl_plugin.core.data.classes import ClassTable
    from geodl_plugin.core.data.series import model_channels, open_series
    from geodl_plugin.core.families import predict_raster
    from geodl_plugin.core.models.family import TilingParams
    from geodl_plugin.core.models.model_file import load_model_file, make_manifest, save_model_file
    from geodl_plugin.core.models.temporal import build_temporal_model, encoder_settings, temporal_flops
    from geodl_plugin.core.models.unet import chip_batches, make_loss
    from geodl_plugin.core.predict.raster_prediction import PredictParams
    from geodl_plugin.core.predict.tiled_prediction import keras_predictor, tile_layout

    figures: dict = {"backend": keras.backend.backend(), "cpu_count": os.cpu_count(), "encoder": args.encoder}
    matmuls, matmul_flops = matmul_cases()
    n_bands, classes = len(BANDS), ClassTable.from_names(list(CLASS_NAMES))
    with tempfile.TemporaryDirectory() as tmp:
        scene = make_series_scene(Path(tmp), size=args.size, n_points=5, seed=0)
        series = open_series(scene.rasters)
        n_dates = series.n_dates
        mean, var = [1500.0] * n_bands, [1000.0**2] * n_bands
        keras.utils.set_random_seed(0)
        model = build_temporal_model(n_dates, n_bands, len(classes), mean, var, args.encoder, args.filters)
        settings = encoder_settings(args.encoder, args.filters, 3, 1, True, 3, (64,), 0.0, n_dates)
        series_entry = {"dates": [d.isoformat() for d in series.dates], "bands": list(series.bands), "doy": [int(v) for v in series.doy]}
        manifest = make_manifest(
            name="bench",
            architecture="temporal",
            task="semantic-segmentation",
            bands=series.feature_names(),
            classes=classes,
            mean=mean,
            std=np.sqrt(var),
            source_dtype="uint16",
            nodata=0,
            pixel_size=series.info.res,
            crs_wkt=series.info.crs_wkt,
            crs_units=series.info.crs_units,
            patch_size=args.patch,
            training={"temporal": settings, "series": series_entry},
            model=model,
        )
        path = Path(tmp) / "bench.geodl"
        save_model_file(path, model, manifest)
        bundle = load_model_file(path)

        # --- tiled prediction -------------------------------------------------------------------------
        tile, overlap, stride = tile_layout(args.size, args.size, args.tile, args.overlap, 1)
        n_side = max(1, -(-(args.size + 2 * overlap - tile) // stride) + 1)
        tiles_run = n_side * n_side
        tile_flops = temporal_flops(tile, tile, n_dates, n_bands, len(classes), args.encoder, args.filters)
        params = PredictParams(
            [str(r) for r in scene.rasters],
            str(path),
            str(Path(tmp) / "class.tif"),
            confidence_output=str(Path(tmp) / "conf.tif"),
            tiling=TilingParams(size=tile, overlap=overlap, batch=args.batch),
        )
        # one batch of tiles, channels first as tiled prediction reads and runs a series
        x = np.random.default_rng(0).normal(1500, 1000, (min(args.batch, n_side), n_dates * (n_bands + 1), tile, tile)).astype(np.float32)
        net_tiles = len(x)
        network = keras_predictor(bundle.model, what="temporal model")  # the prediction's own (cached) predictor

        # --- training --------------------------------------------------------------------------------
        k = args.patch
        full = model_channels(series.read(0, 0, args.size, args.size), series.doy).transpose(1, 2, 0)
        rng = np.random.default_rng(0)
        r = rng.integers(0, args.size - k, args.samples)
        c = rng.integers(0, args.size - k, args.samples)
        xs = np.stack([full[a : a + k, b : b + k] for a, b in zip(r, c, strict=True)])
        ys = np.stack([scene.truth_array[a : a + k, b : b + k] - 1 for a, b in zip(r, c, strict=True)]).astype(np.uint8)
        ys[rng.random(ys.shape) < 0.9] = 255
        batches = chip_batches(xs, ys, args.train_batch, True, 0)
        train = build_temporal_model(n_dates, n_bands, len(classes), mean, var, args.encoder, args.filters)
        train.compile(optimizer=keras.optimizers.Adam(1e-3), loss=make_loss(dice_weight=0.0))
        n = len(batches) * args.train_batch
        best = interleaved(
            {
                **matmuls,
                "predict": lambda: predict_raster(params, bundle=bundle),  # (the first run traces it)
                "network": lambda: network.channels_first(x),
                "fit": lambda: train.fit(batches, epochs=1, verbose=0),
            },
            args.rounds,
        )
        flops_per_s = matmul_rate(best, matmuls, matmul_flops)
        bound = tile_flops * tiles_run / flops_per_s
        seconds, fit_s = best["predict"], best["fit"]
        mpx = args.size * args.size / 1e6
        figures.update(
            {
                "load_average": load_average(),
                "matmul_gflops": flops_per_s / 1e9,
                "scene_px": args.size,
                "dates": n_dates,
                "bands": n_bands,
                "tile": tile,
                "overlap": overlap,
                "tiles": tiles_run,
                "tile_px_over_scene_px": tiles_run * tile * tile / args.size**2,
                "gflop_per_tile": tile_flops / 1e9,
                "bound_s": bound,
                "predict_s": seconds,
                "predict_mpx_s": mpx / seconds,
                "predict_over_bound": seconds / bound,
                "network_over_bound": best["network"] / (tile_flops * net_tiles / flops_per_s),
            }
        )
        sample_flops = 3 * temporal_flops(k, k, n_dates, n_bands, len(classes), args.encoder, args.filters)
        train_bound = sample_flops * n / flops_per_s
        figures.update(
            {
                "patch": k,
                "train_batch": args.train_batch,
                "fit_samples_s": n / fit_s,
                "train_bound_samples_s": n / train_bound,
                "fit_over_bound": fit_s / train_bound,
            }
        )

    f = figures
    lines = [
        f"temporal {args.encoder} (bidirectional, {args.filters} filters, kernel 3), {f['dates']} dates × {f['bands']} "
        f"bands, {len(classes)} classes; backend {f['backend']}, {f['cpu_count']} CPU(s)",
        f"{'machine matmul (float32, 3072²)':44s} {f['matmul_gflops']:10.1f} GFLOP/s  (best of {args.rounds} rounds interleaved "
        f"with the rest; load average {f['load_average']:.1f})",
        f"{'tiled prediction over the series':44s} {f['predict_mpx_s']:10.3f} Mpx/s  ({args.size}² px, "
        f"{f['tiles']} tiles of {f['tile']}², overlap {f['overlap']})",
        f"{'  FLOPs per tile × tiles':44s} {f['gflop_per_tile'] * f['tiles']:10.2f} GFLOP  (the tiles hold "
        f"{f['tile_px_over_scene_px']:.2f}× the scene's pixels: overlaps and mirrored margins)",
        f"{'  compute bound (FLOPs ÷ matmul rate)':44s} {f['bound_s']:10.3f} s",
        f"{'  prediction time (I/O, blending included)':44s} {f['predict_s']:10.3f} s   = {f['predict_over_bound']:.2f}× the bound",
        f"{'  network alone (one batch of tiles)':44s} {'':10s}     = {f['network_over_bound']:.2f}× its bound",
        f"{'training, fit (pipeline + step)':44s} {f['fit_samples_s']:10.1f} samples/s ({k}² patches, batch "
        f"{args.train_batch}); bound {f['train_bound_samples_s']:.1f} samples/s = {f['fit_over_bound']:.2f}× slower",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
