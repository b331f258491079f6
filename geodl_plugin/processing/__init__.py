"""The ``geodl`` Processing provider: thin algorithms over the core, usable from the toolbox, models and
``qgis_process``."""
