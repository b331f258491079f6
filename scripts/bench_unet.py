"""U-Net speed on this machine: tiled prediction against its compute bound, and training throughput with the
input pipeline timed apart from the compute.

- **Achieved FLOP/s**: a large float32 matmul, the faster of NumPy's BLAS and ``keras.ops`` (all cores), timed
  in rounds interleaved with the work it bounds, best of each (``bench_timing.py``: a shared machine's load
  then weighs on both sides of the ratio alike).
- **Tiled prediction**: ``predict_raster`` on a synthetic scene (``make_synthetic_scene.py``) with an untrained
  U-Net model file (speed does not depend on the weights). Its compute bound is the U-Net's FLOPs per tile ×
  the tiles run ÷ the achieved FLOP/s; the table gives the measured time ÷ that bound, for the whole
  prediction (reading, blending, writing included) and for the network alone on the same tiles.
- **Training**: samples/s of the input pipeline alone (batching + flips/rotations), of the train step alone
  on one cached batch, and of ``fit`` with both.

Usage: ``python scripts/bench_unet.py [--size 768] [--tile 256] [--depth 3] [--filters 16] [--rounds 5]
[--json OUT]``; about two minutes on 2 CPU cores. ``make bench`` calls it.
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

tensorflow_environment(os.environ)  # before TensorFlow is imported: the worker's settings
sys.path.insert(0, str(REPO / "scripts"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=768, help="scene size in pixels (square)")
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--overlap", type=int, default=None, help="default: a quarter tile")
    parser.add_argument("--batch", type=int, default=4, help="tiles per batch")
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--filters", type=int, default=16)
    parser.add_argument("--chip", type=int, default=64, help="training chip size")
    parser.add_argument("--chips", type=int, default=256, help="training chips")
    parser.add_argument("--train-batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (each case's best counts)")
    parser.add_argument("--json", default=None, help="also write the figures as JSON here")
    args = parser.parse_args(argv)

    import keras
    from bench_timing import interleaved, load_average, matmul_cases, matmul_rate
    from make_synthetic_scene import make_scene

    from geodl_plugin.core.data.classes import ClassTable
    from geodl_plugin.core.families import predict_raster
    from geodl_plugin.core.io.raster import raster_info
    from geodl_plugin.core.models.family import ModelFamily, TilingParams
    from geodl_plugin.core.models.model_file import make_manifest, save_model_file
    from geodl_plugin.core.models.unet import augment_batch, build_unet, chip_batches, make_loss, unet_flops
    from geodl_plugin.core.predict.raster_prediction import PredictParams
    from geodl_plugin.core.predict.tiled_prediction import batch_spans, keras_predictor, tile_layout

    figures: dict = {"backend": keras.backend.backend(), "cpu_count": os.cpu_count()}
    matmuls, matmul_flops = matmul_cases()

    with tempfile.TemporaryDirectory() as tmp:
        scene = make_scene(tmp, size=args.size, points_per_class=10, seed=0)
        info = raster_info(scene.image)
        bands, classes = info.count, ClassTable.from_names(["crop", "forest", "urban", "water"])
        keras.utils.set_random_seed(0)
        model = build_unet(bands, len(classes), [1000.0] * bands, [300.0**2] * bands, args.depth, args.filters)
        manifest = make_manifest(
            name="bench",
            architecture=ModelFamily.UNET.value,
            task="semantic-segmentation",
            bands=list(info.band_names),
            classes=classes,
            mean=[1000.0] * bands,
            std=[300.0] * bands,
            source_dtype=info.dtype,
            nodata=None,
            pixel_size=info.res,
            crs_wkt=info.crs_wkt,
            crs_units=info.crs_units,
            patch_size=args.chip,
            training={"network": {"depth": args.depth, "base_filters": args.filters}},
        )
        model_path = Path(tmp) / "bench.geodl"
        save_model_file(model_path, model, manifest)

        # --- tiled prediction -------------------------------------------------------------------------
        overlap = args.tile // 4 if args.overlap is None else args.overlap
        tile, overlap, stride = tile_layout(info.width, info.height, args.tile, overlap, 2**args.depth)
        nx = max(1, -(-(info.width + 2 * overlap - tile) // stride) + 1)
        ny = max(1, -(-(info.height + 2 * overlap - tile) // stride) + 1)
        tiles_run = nx * ny  # every tile the layout needs, none padded
        tile_flops = unet_flops(tile, tile, bands, len(classes), args.depth, args.filters)
        params = PredictParams(
            [str(scene.image)], str(model_path), str(Path(tmp) / "class.tif"), confidence_output=str(Path(tmp) / "conf.tif")
        )
        params.tiling = TilingParams(size=tile, overlap=overlap, batch=args.batch)
        from geodl_plugin.core.models.model_file import load_model_file

        bundle = load_model_file(model_path)  # loaded once, as the dock's worker keeps it
        # the network alone, on the same tiles in the same batches
        net = keras_predictor(bundle.model, 2**args.depth)
        predict = net.run  # in the network's own layout, as tiled prediction runs it
        shape = (nx, bands, tile, tile) if net.first else (nx, tile, tile, bands)
        x = np.random.default_rng(0).normal(1000, 300, shape).astype(np.float32)
        spans = batch_spans(nx, args.batch)

        def network() -> None:  # one strip's batches, once per strip
            for _ in range(ny):
                for start, size in spans:
                    predict(x[start : start + size])

        # matmul, prediction and network interleaved, best of each (the warm-up traces the predict function)
        best = interleaved({**matmuls, "predict": lambda: predict_raster(params, bundle=bundle), "network": network}, args.rounds)
        flops_per_s = matmul_rate(best, matmuls, matmul_flops)
        bound = tile_flops * tiles_run / flops_per_s
        seconds, net_seconds = best["predict"], best["network"]
        mpx = info.width * info.height / 1e6
        figures.update(
            {
                "load_average": load_average(),
                "matmul_gflops": flops_per_s / 1e9,
                "scene_px": [info.width, info.height],
                "tile": tile,
                "overlap": overlap,
                "tiles": tiles_run,
                "tile_px_over_scene_px": tiles_run * tile * tile / (info.width * info.height),
                "gflop_per_tile": tile_flops / 1e9,
                "bound_s": bound,
                "predict_s": seconds,
                "predict_mpx_s": mpx / seconds,
                "network_s": net_seconds,
                "predict_over_bound": seconds / bound,
                "network_over_bound": net_seconds / bound,
                "network_gflops": tile_flops * tiles_run / net_seconds / 1e9,
            }
        )

        # --- training --------------------------------------------------------------------------------
        import rasterio

        with rasterio.open(scene.image) as ds:
            image = np.moveaxis(ds.read(), 0, -1).astype(np.float32)
        rng = np.random.default_rng(0)
        k = args.chip
        r = rng.integers(0, info.height - k, args.chips)
        c = rng.integers(0, info.width - k, args.chips)
        xs = np.stack([image[a : a + k, b : b + k] for a, b in zip(r, c, strict=True)])
        ys = np.stack([scene.truth_array[a : a + k, b : b + k] - 1 for a, b in zip(r, c, strict=True)]).astype(np.uint8)
        ys[rng.random(ys.shape) < 0.9] = 255  # sparse labels, as in practice
        batches = chip_batches(xs, ys, args.train_batch, True, 0)
        train = build_unet(bands, len(classes), [1000.0] * bands, [300.0**2] * bands, args.depth, args.filters)
        train.compile(optimizer=keras.optimizers.Adam(1e-3), loss=make_loss())
        xb, yb = augment_batch(xs[: args.train_batch], ys[: args.train_batch], rng)
        xb, yb = keras.ops.convert_to_tensor(xb), keras.ops.convert_to_tensor(yb.astype(np.int32))
        steps = len(batches)
        best = interleaved(
            {
                **matmuls,
                "pipeline": lambda: [batches[i] for i in range(len(batches))],
                "step": lambda: [train.train_on_batch(xb, yb) for _ in range(steps)],
                "fit": lambda: train.fit(batches, epochs=1, verbose=0),
            },
            max(2, args.rounds // 2),
        )
        pipeline_s, step_s, fit_s = best["pipeline"], best["step"], best["fit"]
        n = steps * args.train_batch
        chip_flops = 3 * unet_flops(k, k, bands, len(classes), args.depth, args.filters)  # forward + backward ≈ 3×
        figures.update(
            {
                "chip": k,
                "train_batch": args.train_batch,
                "pipeline_samples_s": n / pipeline_s,
                "step_samples_s": n / step_s,
                "fit_samples_s": n / fit_s,
                "train_step_gflops": chip_flops * n / step_s / 1e9,
                "fit_over_step": step_s and fit_s / step_s,
            }
        )

    f = figures
    lines = [
        f"U-Net depth {args.depth}, {args.filters} filters, {bands} bands, {len(classes)} classes; "
        f"backend {f['backend']}, {f['cpu_count']} CPU(s)",
        f"{'machine matmul (float32, 3072²)':44s} {f['matmul_gflops']:10.1f} GFLOP/s  (best of {args.rounds} rounds interleaved "
        f"with the prediction; load average {f['load_average']:.1f})",
        f"{'tiled prediction':44s} {f['predict_mpx_s']:10.3f} Mpx/s  ({f['scene_px'][0]}×{f['scene_px'][1]} px, "
        f"{f['tiles']} tiles of {f['tile']}², overlap {f['overlap']})",
        f"{'  FLOPs per tile × tiles':44s} {f['gflop_per_tile'] * f['tiles']:10.2f} GFLOP  (the tiles hold "
        f"{f['tile_px_over_scene_px']:.2f}× the scene's pixels: overlaps and mirrored margins)",
        f"{'  compute bound (FLOPs ÷ matmul rate)':44s} {f['bound_s']:10.3f} s",
        f"{'  prediction time (I/O, blending included)':44s} {f['predict_s']:10.3f} s   = {f['predict_over_bound']:.2f}× the bound",
        f"{'  network alone, same tiles':44s} {f['network_s']:10.3f} s   = {f['network_over_bound']:.2f}× the bound "
        f"({f['network_gflops']:.1f} GFLOP/s)",
        f"{'training, input pipeline alone':44s} {f['pipeline_samples_s']:10.1f} samples/s ({k}² chips, "
        f"batch {args.train_batch}, flips/rotations)",
        f"{'training, train step alone (cached batch)':44s} {f['step_samples_s']:10.1f} samples/s ({f['train_step_gflops']:.1f} GFLOP/s)",
        f"{'training, fit (pipeline + step)':44s} {f['fit_samples_s']:10.1f} samples/s   = {f['fit_over_step']:.2f}× the step-alone time",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
