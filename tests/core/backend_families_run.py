"""One Keras backend's part of ``test_backend_families.py``, run as ``python -m tests.core.backend_families_run
SAMPLES_DIR OUT_DIR train|skip [OTHER_BACKEND]`` with ``KERAS_BACKEND`` set (Keras fixes its backend once per
process).

With ``train``, from the samples the test cut once (so both backends learn from the same data) it trains the
temporal family (bidirectional ConvGRU and ConvLSTM) and the pixel DNN regression through ``train_model`` and
maps the scenes through ``predict_raster`` into ``OUT_DIR/<backend>_<model>.tif``. When ``OTHER_BACKEND`` is
given, it predicts the model files that backend wrote into ``OUT_DIR/<backend>_from_<other>_<model>.tif``.
Prints one line ``REPORT {json}`` (backend, held-out metrics, seconds to train and map each model).
On torch, TensorFlow is made unimportable first (``no_tensorflow.py``), as in a torch-only runtime.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from tests.core.no_tensorflow import block_tensorflow

# Small so that both backends together stay within about a minute on two cores: per-pixel recurrent kernels
# (the crops differ only in timing, which is per pixel; see test_temporal_truth.py), point samples of 1 px,
# small batches (more steps per epoch from few samples). Map accuracy so: 0.947-0.995 on both backends.
TEMPORAL = {"filters": 6, "kernel_size": 1, "head_kernel": 1, "augment": False}
TEMPORAL_TRAIN = {"epochs": 15, "batch_size": 8, "learning_rate": 1e-2, "patience": 15, "split": "random", "test_fraction": 0.2}
REGRESSION_TRAIN = {"epochs": 15, "batch_size": 64, "learning_rate": 1e-2, "patience": 15, "split": "random", "test_fraction": 0.25}


def main(samples: Path, out: Path, train_here: bool, other: str) -> dict:
    import keras

    from geodl_plugin.core.families import predict_raster, train_model
    from geodl_plugin.core.models.family import TemporalParams
    from geodl_plugin.core.train.trainer import TrainParams

    backend = keras.backend.backend()
    scenes = json.loads((samples / "scenes.json").read_text())
    report: dict = {"backend": backend}
    runs = [
        (f"temporal_{cell}", "temporal", "series", TemporalParams(encoder=cell, **TEMPORAL), TEMPORAL_TRAIN) for cell in ("gru", "lstm")
    ]
    runs.append(("dnn_regression", "dnn_regression", "regression", None, REGRESSION_TRAIN))
    for name, family, scene, options, train in runs:
        if not train_here:
            predict_raster(_params(scenes[scene], str(out / f"{other}_{name}.geodl"), out / f"{backend}_from_{other}_{name}"))
            continue
        keras.utils.set_random_seed(0)
        model = str(out / f"{backend}_{name}.geodl")
        start = time.perf_counter()
        result = train_model(TrainParams([str(samples / f"{scene}.tfrecord.gz")], model, family=family, options=options, seed=0, **train))
        held_out = result.metrics.to_dict()
        report[name] = {key: held_out[key] for key in ("overall_accuracy", "r2", "rmse") if key in held_out}
        predict_raster(_params(scenes[scene], model, out / f"{backend}_{name}"))
        report[name]["seconds"] = round(time.perf_counter() - start, 1)
        if other:  # the model file the other backend wrote, on this backend
            predict_raster(_params(scenes[scene], str(out / f"{other}_{name}.geodl"), out / f"{backend}_from_{other}_{name}"))
    return report


def _params(rasters: list[str], model: str, stem: Path) -> Any:
    from geodl_plugin.core.predict.raster_prediction import PredictParams

    # Probabilities (classifiers) or the value raster (regression) are what the test compares across backends.
    params = PredictParams(rasters, model, f"{stem}.tif", probabilities_output=f"{stem}_probs.tif" if "temporal" in stem.name else None)
    params.tiling.size, params.tiling.overlap = 16, 4  # several blended tiles on the 32-px series scene
    return params


if __name__ == "__main__":
    if os.environ.get("KERAS_BACKEND") == "torch":
        block_tensorflow()
    folder, target, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    sys.stdout.write("REPORT " + json.dumps(main(folder, target, mode == "train", sys.argv[4] if len(sys.argv) > 4 else "")) + "\n")
