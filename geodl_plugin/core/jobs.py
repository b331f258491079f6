"""The worker process's entry point and its allow-list: the only functions a worker runs.

``runtime/worker.py`` starts ``python -m geodl_plugin.core.jobs``; a caller names the function itself
(``run_in_worker(train_model, params, progress)``), so go-to-definition leads from the dock or a Processing
algorithm straight to the code that runs, and nothing outside this list can be asked of the worker.
"""

from __future__ import annotations

import os
import sys

from .earthengine.native import dnn_weights_json
from .earthengine.vertex import export_savedmodel
from .families import evaluate_model, predict_raster, train_model
from .label_training import train_from_labels, train_from_targets
from .models.onnx_export import export_onnx
from .runtime.dependencies import describe_training_device
from .runtime.worker import job_name, serve

ALLOWED = (
    train_model,
    train_from_labels,
    train_from_targets,
    predict_raster,
    evaluate_model,
    describe_training_device,
    export_onnx,
    dnn_weights_json,
    export_savedmodel,
)  # the last two: Earth Engine-native, Vertex AI serving
JOBS = {job_name(function): function for function in ALLOWED}

if __name__ == "__main__":
    code = serve(JOBS)
    sys.stderr.flush()
    os._exit(code)  # skip interpreter teardown (TensorFlow's static destructors can crash on exit)
