"""Qt-free core of geodl: labels, sampling, datasets, models, training, prediction, metrics.

Nothing here imports Qt, QGIS widgets or ``iface``; heavy libraries (TensorFlow, Earth Engine) are imported
inside the functions that need them, so importing the core is cheap and works with them missing.
"""
