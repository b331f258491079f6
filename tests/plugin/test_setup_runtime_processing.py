"""geodl:setupruntime, the headless install: its parameters and remove. Installing is the core's
create_runtime, the same call the dock's button makes, tested in tests/core/test_runtime_environment.py
(from the index, offline failure, cancel) and used by the desktop test."""

from __future__ import annotations

import json


def test_remove_through_processing(geodl_provider, tmp_path):
    import processing

    root = tmp_path / "runtime"
    (root / "bin").mkdir(parents=True)
    (root / "geodl-runtime.json").write_text(json.dumps({"backend": "tensorflow", "device": "cpu", "python_version": "3.11.2"}))
    out = processing.run("geodl:setupruntime", {"REMOVE": True, "FOLDER": str(root)})
    assert out["RUNTIME_FOLDER"] == "" and not root.exists()
    algorithm = geodl_provider.algorithm("setupruntime")
    assert "QGIS's own Python is never modified" in algorithm.shortHelpString()
    assert algorithm.parameterDefinition("INDEX_URL").flags() & algorithm.parameterDefinition("INDEX_URL").Flag.FlagAdvanced
