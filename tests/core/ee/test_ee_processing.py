"""The Earth Engine Processing algorithms, run through QGIS Processing against the fake transport."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

EXTENT_4326 = "10.0,10.01,45.0,45.01 [EPSG:4326]"


def labelled_points(n: int):
    """A memory layer of n points (EPSG:32632) with an integer class field 'cls' alternating 0/1."""
    from qgis.core import QgsFeature, QgsGeometry, QgsPointXY, QgsVectorLayer

    layer = QgsVectorLayer("Point?crs=EPSG:32632&field=cls:integer", "pts", "memory")
    features = []
    for i in range(n):
        f = QgsFeature(layer.fields())
        f.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(600000 + 10 * i, 5000000)))
        f.setAttributes([i % 2])
        features.append(f)
    layer.dataProvider().addFeatures(features)
    return layer


@pytest.fixture
def run_alg(qgis_processing):
    import processing

    def run(alg_class, params):
        alg = alg_class()
        alg.initAlgorithm()
        return processing.run(alg, params)

    return run


def test_algorithms_are_in_the_catalogue():
    from geodl_plugin.processing.algorithms import all_algorithms

    names = {cls.NAME for cls in all_algorithms()}
    assert {"eecomposite", "eeexporttraining", "eeexportimage", "eedownload", "eeupload"} <= names
    for cls in all_algorithms():
        if cls.NAME.startswith("ee"):
            assert cls.GROUP == "Earth Engine" and cls.HELP


def test_export_training_algorithm(ee_session, run_alg):
    from geodl_plugin.processing.algorithms.ee_export_training import EEExportTrainingAlgorithm

    layer = labelled_points(5)
    result = run_alg(
        EEExportTrainingAlgorithm,
        {
            "INPUT": layer,
            "CLASS_FIELD": "cls",
            "PROJECT": "test-project",
            "EXTENT": EXTENT_4326,
            "SENSOR": 0,
            "START": "2023-06-01",
            "END": "2023-08-01",
            "PATCH_SIZE": 3,
            "SCALE": 10,
            "DESTINATION": 0,
            "BUCKET": "my-bucket",
            "PREFIX": "t/run",
            "INDICES": [0],
        },
    )
    assert result["TASK_IDS"]
    ((_, _, body),) = [r for r in ee_session.requests if "table:export" in r[1]]
    assert body["selectors"] == ["B2", "B3", "B4", "B8", "B11", "B12", "NDVI", "class"]
    assert str(body["expression"]).count("GeometryConstructors.Point") == 5


def test_download_algorithm(ee_session, run_alg, tmp_path):
    from geodl_plugin.processing.algorithms.ee_download import EEDownloadAlgorithm

    x0, y0 = ee_session.origin
    out = tmp_path / "dl.tif"
    run_alg(
        EEDownloadAlgorithm,
        {
            "PROJECT": "test-project",
            "EXTENT": f"{x0},{x0 + 400},{y0 - 200},{y0} [EPSG:32632]",
            "SENSOR": 1,
            "START": "2023-06-01",
            "END": "2023-08-01",
            "CRS": "EPSG:32632",
            "SCALE": 10,
            "WORKERS": 2,
            "BANDS": "SR_B4,SR_B5",
            "OUTPUT": str(out),
        },
    )
    with rasterio.open(out) as src:
        assert (src.width, src.height, src.count) == (40, 20, 2)
        assert src.transform.c == pytest.approx(x0) and src.transform.f == pytest.approx(y0)
        assert np.isfinite(src.read()).all()


def test_not_signed_in_becomes_processing_error(fake_ee, run_alg):
    """No session and no stored credentials (HOME is empty): the algorithm says how to sign in."""
    from qgis.core import QgsProcessingException

    from geodl_plugin.processing.algorithms.ee_composite import EECompositeAlgorithm

    with pytest.raises(QgsProcessingException, match="earthengine authenticate"):
        run_alg(EECompositeAlgorithm, {"PROJECT": "test-project", "EXTENT": EXTENT_4326, "LOAD": False})


def test_export_training_waits_and_downloads(ee_session, run_alg, gcs, monkeypatch, tmp_path):
    """With a download folder, the algorithm is the task monitor: it polls the export until it succeeds and
    fetches its Cloud Storage files (the bucket side is a small fake; Earth Engine stays the real client)."""
    from google.cloud import storage

    from geodl_plugin.processing.algorithms.ee_export_training import EEExportTrainingAlgorithm

    monkeypatch.setattr(storage, "Client", lambda *a, **k: gcs)
    gcs.objects[("my-bucket", "t/run.tfrecord.gz")] = b"records"
    layer = labelled_points(4)
    folder = tmp_path / "downloads"
    run_alg(
        EEExportTrainingAlgorithm,
        {
            "INPUT": layer,
            "CLASS_FIELD": "cls",
            "PROJECT": "test-project",
            "EXTENT": EXTENT_4326,
            "SENSOR": 0,
            "START": "2023-06-01",
            "END": "2023-08-01",
            "PATCH_SIZE": 1,
            "SCALE": 10,
            "DESTINATION": 0,
            "BUCKET": "my-bucket",
            "PREFIX": "t/run",
            "DOWNLOAD_FOLDER": str(folder),
        },
    )
    assert (folder / "run.tfrecord.gz").read_bytes() == b"records"
    assert [r for r in ee_session.requests if "/operations/" in r[1] and r[0] == "GET"], "the export was polled"


def test_download_algorithm_defaults_to_the_utm_grid_and_embeddings(ee_session, run_alg, tmp_path):
    """No CRS given: the region's UTM zone (not EPSG:3857 'metres'), aligned to whole pixels; the Satellite
    Embedding source for a year; masked pixels as the file's nodata."""
    from geodl_plugin.core.earthengine.grid import NODATA
    from geodl_plugin.processing.algorithms.ee_download import EEDownloadAlgorithm

    ee_session.masked = lambda grid: np.indices((grid["dimensions"]["height"], grid["dimensions"]["width"]))[0] == 0
    out = tmp_path / "emb.tif"
    run_alg(
        EEDownloadAlgorithm,
        {
            "PROJECT": "test-project",
            "EXTENT": "10.1,10.104,45.0,45.003 [EPSG:4326]",
            "SENSOR": 2,
            "YEAR": 2021,
            "SCALE": 10,
            "BANDS": "A00,A05,A63",
            "OUTPUT": str(out),
        },
    )
    with rasterio.open(out) as src:
        assert src.crs.to_epsg() == 32632 and src.count == 3 and src.nodata == NODATA
        assert src.transform.c % 10 == 0 and src.transform.f % 10 == 0
        assert list(src.descriptions) == ["A00", "A05", "A63"]
        data = src.read()
    assert (data[:, 0, :] == NODATA).all() and (data[:, 1:, :] != NODATA).all()  # the top row is masked
    body = ee_session.calls(":computePixels")[0][2]
    assert body["grid"]["crsCode"] == "EPSG:32632"
    assert "GOOGLE/SATELLITE_EMBEDDING/V1/ANNUAL" in str(body["expression"]) and "2021-01-01" in str(body)
