"""geodl:setupruntime, the headless install: remove, and an offline install whose wheel folder lacks the
packages failing with pip's reason as a Processing error (the success path is the core's create_runtime,
tested in tests/core/test_runtime_environment.py and used by the desktop test)."""

from __future__ import annotations

import json

import pytest
from qgis.core import QgsProcessingException


def test_remove_through_processing(geodl_provider, tmp_path):
    import processing

    root = tmp_path / "runtime"
    (root / "bin").mkdir(parents=True)
    (root / "geodl-runtime.json").write_text(json.dumps({"backend": "tensorflow", "device": "cpu",
                                                         "python_version": "3.11.2"}))
    out = processing.run("geodl:setupruntime", {"REMOVE": True, "FOLDER": str(root)})
    assert out["RUNTIME_FOLDER"] == "" and not root.exists()
    algorithm = geodl_provider.algorithm("setupruntime")
    assert "QGIS's own Python is never modified" in algorithm.shortHelpString()
    assert algorithm.parameterDefinition("INDEX_URL").flags() & algorithm.parameterDefinition("INDEX_URL").Flag.FlagAdvanced


@pytest.mark.slow
def test_offline_install_without_the_wheels_is_a_clear_processing_error(geodl_provider, tmp_path):
    import processing

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    with pytest.raises(QgsProcessingException, match="pip exit code"):
        processing.run("geodl:setupruntime", {"DEVICE": 1, "WHEELS": str(wheels), "FOLDER": str(tmp_path / "rt")})
    assert not (tmp_path / "rt").exists() and list(tmp_path.glob(".rt-*")) == []
