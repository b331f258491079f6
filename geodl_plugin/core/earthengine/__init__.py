"""Earth Engine backend: sign-in, composites, TFRecord exports and their mixer, direct download, task
monitor and upload back. Qt-free; ``ee`` and ``google.cloud.storage`` are imported inside the functions."""
