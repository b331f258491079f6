"""Time series from Earth Engine: windows, the request graph per date, the download read back as a series,
and exported records read by the series-sample reader (the real client against the fake transport)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Iterator

import numpy as np
import pytest
import rasterio

from geodl_plugin.core.data.series import open_series
from geodl_plugin.core.data.series_samples import is_series_file, load_series_samples
from geodl_plugin.core.earthengine.composites import CompositeParams
from geodl_plugin.core.earthengine.exports import Destination, LabelledPoint
from geodl_plugin.core.earthengine.grid import NODATA
from geodl_plugin.core.earthengine.monitor import write_sample_sidecars
from geodl_plugin.core.earthengine.series import SeriesParams, add_months, monthly_windows, parse_windows
from geodl_plugin.core.earthengine.series_download import SeriesDownloadParams, download_series
from geodl_plugin.core.earthengine.series_export import LabelledGeometry, SeriesExportParams, export_series
from geodl_plugin.core.io.tfrecord import TFRecordWriter
from geodl_plugin.core.runtime.errors import Cancelled, GeoDLError
from geodl_plugin.core.runtime.progress import Progress

REGION = (10.0, 45.0, 10.01, 45.01)
MONTHLY_KEYS = ["20230116", "20230215", "20230316", "20230416"]  # middle days of Jan-Apr 2023


def s2_series(**kw: Any) -> SeriesParams:
    composite = CompositeParams(region=REGION, start="2023-01-01", end="2023-05-01", bands=("B4", "B8"), indices=("NDVI",))
    return SeriesParams(composite, **kw)


def answer_counts(fake, counts: list[int]) -> None:
    fake.handlers.append(lambda m, uri, body: (200, {"result": counts}) if uri.split("?")[0].endswith("value:compute") else None)


# --- the serialized expression as a tree ----------------------------------------------------------------


def tree(expression: dict) -> Any:
    """The expression with every valueReference (and function body) inlined."""
    values = expression["values"]

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if "valueReference" in node:
                return resolve(values[node["valueReference"]])
            if "functionDefinitionValue" in node:
                definition = node["functionDefinitionValue"]
                return {"functionDefinitionValue": {**definition, "body": resolve(values[definition["body"]])}}
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    return resolve(values[expression["result"]])


def calls(node: Any, name: str) -> Iterator[dict]:
    """The arguments of every call of ``name`` in a tree."""
    if isinstance(node, dict):
        call = node.get("functionInvocationValue")
        if isinstance(call, dict) and call.get("functionName") == name:
            yield call.get("arguments", {})
        for value in node.values():
            yield from calls(value, name)
    elif isinstance(node, list):
        for value in node:
            yield from calls(value, name)


def const(node: Any) -> Any:
    if isinstance(node, dict) and "constantValue" in node:
        return node["constantValue"]
    if isinstance(node, dict) and "arrayValue" in node:
        return [const(v) for v in node["arrayValue"]["values"]]
    return node


def image_constant(node: Any) -> Any:
    """The number of an ``Image.constant(number)`` node (the client wraps numbers given as images so)."""
    return const(node["functionInvocationValue"]["arguments"]["value"])


def date_ranges(node: Any) -> set[tuple[str, str]]:
    return {(const(a["start"]), const(a["end"])) for a in calls(node, "DateRange")}


def renamed(node: Any) -> dict[tuple[str, ...], Any]:
    """{new band names: the renamed image's tree} for every Image.rename."""
    return {tuple(const(a["names"])): a["input"] for a in calls(node, "Image.rename")}


# --- windows ------------------------------------------------------------------------------------------


def test_windows_monthly_custom_and_refused():
    windows = monthly_windows("2023-01-01", "2023-05-01")
    assert [w.key for w in windows] == MONTHLY_KEYS
    assert windows[1].label == "2023-02-01…2023-03-01"
    assert [w.key for w in monthly_windows("2023-01-15", "2023-06-01", months=2)] == ["20230213", "20230414", "20230523"]
    assert add_months(dt.date(2023, 1, 31), 1) == dt.date(2023, 2, 28)
    assert parse_windows("2023-03-01/2023-05-01; 2023-05-01..2023-07-01") == [("2023-03-01", "2023-05-01"), ("2023-05-01", "2023-07-01")]
    with pytest.raises(GeoDLError, match="START/END"):
        parse_windows("2023-03-01")
    with pytest.raises(GeoDLError, match="at least two dates"):
        s2_series(windows=(("2023-01-01", "2023-02-01"),)).validate()
    with pytest.raises(GeoDLError, match="same middle day"):
        s2_series(windows=(("2023-01-01", "2023-01-31"), ("2023-01-02", "2023-01-30"))).validate()
    embedding = SeriesParams(CompositeParams(REGION, "2023-01-01", "2024-01-01", sensor="embedding"))
    with pytest.raises(GeoDLError, match="Sentinel-2 or Landsat"):
        embedding.validate()


def test_not_signed_in_says_how(fake_ee, tmp_path):
    with pytest.raises(GeoDLError, match="earthengine authenticate"):
        download_series(SeriesDownloadParams(s2_series(), str(tmp_path / "out")))
    assert not fake_ee.requests


# --- the request graph ----------------------------------------------------------------------------------


def test_monthly_series_graph_per_date(ee_session, tmp_path):
    """Four monthly windows, February without a scene: one count request over the four windows, and a table
    export whose bands are named per date, each from the median of its own window's Cloud-Score+-masked
    scenes, February a masked constant (no collection) that the export fills with -9999."""
    answer_counts(ee_session, [3, 0, 2, 5])
    pts = [LabelledPoint(10.002 + i * 1e-3, 45.005, i % 2) for i in range(3)]
    params = SeriesExportParams(s2_series(), Destination("gcs", "my-bucket", prefix="ts/run"), patch_size=3)
    result = export_series(params, points=pts)

    ((_, _, counted),) = ee_session.calls("value:compute")
    spans = date_ranges(tree(counted["expression"]))
    windows = {("2023-01-01", "2023-02-01"), ("2023-02-01", "2023-03-01"), ("2023-03-01", "2023-04-01"), ("2023-04-01", "2023-05-01")}
    assert windows | {("2023-01-01", "2023-05-01")} == spans

    ((_, _, body),) = [r for r in ee_session.requests if r[1].split("?")[0].endswith("table:export")]
    names = [f"{b}_{k}" for k in MONTHLY_KEYS for b in ("B4", "B8", "NDVI")]
    assert body["selectors"] == names + ["class"]
    graph = tree(body["expression"])
    by_names = renamed(graph)
    for key, (start, end), scenes in zip(MONTHLY_KEYS, sorted(windows), [3, 0, 2, 5]):
        image = by_names[(f"B4_{key}", f"B8_{key}", f"NDVI_{key}")]
        medians = {json.dumps(m, sort_keys=True) for m in calls(image, "reduce.median")}  # bands and NDVI share one
        if scenes:
            assert len(medians) == 1 and date_ranges(image) == {(start, end), ("2023-01-01", "2023-05-01")}
            thresholds = [image_constant(a["image2"]) for a in calls(image, "Image.gte")]
            assert thresholds and set(thresholds) == {0.6}  # Cloud Score+: clear where cs >= 0.6
            assert "GOOGLE/CLOUD_SCORE_PLUS/V1/S2_HARMONIZED" in str(image)
            assert list(calls(image, "Image.normalizedDifference"))
        else:
            assert not medians and "ImageCollection.load" not in str(image)
            (mask,) = calls(image, "Image.updateMask")
            assert image_constant(mask["mask"]) == 0
    assert ee_session.unmask_values(body["expression"]) == [NODATA]
    assert {"Image.neighborhoodToArray", "Image.sampleRegions"} <= ee_session.function_names(body["expression"])
    assert result.empty_windows == ["2023-02-01…2023-03-01"]
    assert any("2023-02-01…2023-03-01" in w and "nodata" in w for w in result.warnings)
    sidecar = result.started[0].sidecar
    assert sidecar["series"] == {"dates": ["2023-01-16", "2023-02-15", "2023-03-16", "2023-04-16"], "bands": ["B4", "B8", "NDVI"]}
    assert sidecar["nodata"] == NODATA and sidecar["patch_size"] == 3


def test_exported_point_records_read_as_series_samples(ee_session, tmp_path):
    """Records in the layout Earth Engine's table export writes (GZIP, one float list per selector, k×k
    row-major) with the sidecar the monitor writes: the series-sample reader gets the dates, the day of year
    and the empty February as missing, not zero."""
    answer_counts(ee_session, [3, 0, 2, 5])
    pts = [LabelledPoint(10.002 + i * 1e-3, 45.005, i % 2) for i in range(4)]
    params = SeriesExportParams(s2_series(), Destination("gcs", "bkt", prefix="ts/run"), patch_size=3)
    (started,) = export_series(params, points=pts).started
    path = tmp_path / "run.tfrecord.gz"
    with TFRecordWriter(path) as writer:
        for i, p in enumerate(pts):
            record: dict = {}
            for t, key in enumerate(MONTHLY_KEYS):
                for b, band in enumerate(("B4", "B8", "NDVI")):
                    values = np.full(9, NODATA if t == 1 else 0.1 * (t + 1) + 0.01 * b, np.float32)
                    if i == 0 and t == 0:
                        values[4] = NODATA  # a cloud over point 0's centre in January
                    record[f"{band}_{key}"] = values
            record["class"] = np.array([p.label], np.float32)
            writer.write(record)
    write_sample_sidecars([path], started.sidecar)
    assert is_series_file(path)
    chips = load_series_samples(path)
    assert chips.meta["series"]["dates"] == ["2023-01-16", "2023-02-15", "2023-03-16", "2023-04-16"]
    x = chips.x.reshape(4, 3, 3, 4, 4)  # samples, k, k, dates, bands + day of year
    assert np.isnan(x[:, :, :, 1, :3]).all()  # February: no scene → missing everywhere
    assert np.isnan(x[0, 1, 1, 0, :3]).all() and np.isfinite(x[1, 1, 1, 0, :3]).all()
    np.testing.assert_allclose(x[1, 0, 0, 2, :3], [0.3, 0.31, 0.32], rtol=1e-6)
    np.testing.assert_array_equal(x[0, 0, 0, :, 3], [16, 46, 75, 106])  # day of year of each middle day
    assert [int(chips.mask[i, 1, 1]) for i in range(4)] == [0, 1, 0, 1]


def test_patch_export_paints_labels_and_records_read_as_chips(ee_session, tmp_path):
    """The region as 4×4 patches with a class band painted from a labelled polygon (255 elsewhere): an image
    export whose records the reader takes as chip sequences."""
    answer_counts(ee_session, [1, 1, 1, 1])
    polygon = {"type": "Polygon", "coordinates": [[[10.001, 45.001], [10.004, 45.001], [10.004, 45.004], [10.001, 45.001]]]}
    params = SeriesExportParams(s2_series(), Destination("gcs", "bkt", prefix="ts/chips"), mode="patches", patch_size=4)
    (started,) = export_series(params, labels=[LabelledGeometry(polygon, 2)]).started
    ((_, _, body),) = [r for r in ee_session.requests if r[1].split("?")[0].endswith("image:export")]
    tf = body["fileExportOptions"]["tfRecordOptions"]
    assert body["fileExportOptions"]["fileFormat"] == "TF_RECORD_IMAGE"
    assert tf["tileDimensions"] == {"width": 4, "height": 4}
    (paint,) = calls(tree(body["expression"]), "Image.paint")
    assert const(paint["color"]) == "class" and "10.004" in str(paint["featureCollection"])
    assert started.sidecar["kind"] == "chips" and started.sidecar["series"]["bands"] == ["B4", "B8", "NDVI"]

    path = tmp_path / "chips-00000.tfrecord.gz"
    with TFRecordWriter(path) as writer:
        for n in range(2):
            record = {f"{b}_{k}": np.full(16, 0.2 + 0.1 * n, np.float32) for k in MONTHLY_KEYS for b in ("B4", "B8", "NDVI")}
            label = np.full(16, 255, np.float32)
            label[:6] = 2
            record["class"] = label
            writer.write(record)
    write_sample_sidecars([path], started.sidecar)
    chips = load_series_samples(path)
    assert chips.x.shape == (2, 4, 4, 16)
    assert (chips.mask[0].ravel()[:6] == 2).all() and (chips.mask[0].ravel()[6:] == 255).all()


# --- the download ---------------------------------------------------------------------------------------


def landsat_series() -> SeriesParams:
    composite = CompositeParams(
        region=(9.0, 63.0, 9.01, 63.01), start="2023-04-01", end="2023-08-01", sensor="landsat", bands=("SR_B4", "SR_B5")
    )
    windows = (("2023-04-01", "2023-05-01"), ("2023-05-01", "2023-07-01"), ("2023-07-01", "2023-08-01"))
    return SeriesParams(composite, windows=windows)


def serve_by_window(fake) -> None:
    """computePixels as the server would answer it for this test: every pixel of a window's composite is its
    start month (+0.5 for the second band); in April the top-left 3×3 pixels are cloudy in every scene, so
    they arrive as the expression's unmask value."""
    span = ("2023-04-01", "2023-08-01")

    def handler(method: str, uri: str, body: Any):
        if not uri.split("?")[0].endswith("image:computePixels"):
            return None
        ((start, _end),) = date_ranges(tree(body["expression"])) - {span}
        grid = body["grid"]
        h, w = grid["dimensions"]["height"], grid["dimensions"]["width"]
        month = float(start[5:7])
        array = np.zeros((h, w), dtype=[(b, "<f4") for b in body["bandIds"]])
        for i, band in enumerate(body["bandIds"]):
            values = np.full((h, w), month + 0.5 * i, np.float32)
            if month == 4:
                values[:3, :3] = fake.unmask_values(body["expression"])[-1]
            array[band] = values
        return 200, fake.npy_bytes(array)

    fake.handlers.append(handler)


def test_download_reads_back_as_a_series_with_the_empty_window_masked(ee_session, tmp_path):
    answer_counts(ee_session, [2, 0, 3])
    serve_by_window(ee_session)
    x0, y0 = ee_session.origin
    params = SeriesDownloadParams(
        landsat_series(), str(tmp_path / "series"), scale=10.0, crs="EPSG:32632", bounds=(x0, y0 - 200, x0 + 300, y0), backoff_seconds=0.0
    )
    result = download_series(params)

    pixel_bodies = [b for _, u, b in ee_session.requests if u.split("?")[0].endswith("image:computePixels")]
    assert len(pixel_bodies) == 2  # the window without scenes costs no request
    landsat = tree(pixel_bodies[0]["expression"])
    bit_masks = {image_constant(a["image2"]) for a in calls(landsat, "Image.bitwiseAnd")}
    assert bit_masks == {0b11111, (1 << 11) | (1 << 3) | (1 << 4)}  # QA_PIXEL; QA_RADSAT for SR_B4, SR_B5 + terrain
    assert [f.name for f in result.files] == ["landsat_20230416.tif", "landsat_20230531.tif", "landsat_20230716.tif"]
    assert result.empty_windows == ["2023-05-01…2023-07-01"]
    assert result.observed == pytest.approx([1 - 9 / 600, 0.0, 1.0])
    with rasterio.open(result.files[0]) as ds:
        assert ds.tags()["ACQUISITION_DATE"] == "2023-04-16" and ds.nodata == NODATA
        assert (ds.width, ds.height) == (30, 20) and ds.transform.c == x0 and ds.transform.f == y0

    for series in (open_series(result.files), open_series([result.stack])):
        assert series.dates == (dt.date(2023, 4, 16), dt.date(2023, 5, 31), dt.date(2023, 7, 16))
        assert series.bands == ("SR_B4", "SR_B5")
        block = series.read(0, 0, 30, 20)
        assert np.isnan(block[1]).all()  # no scene: missing, not zero
        assert np.isnan(block[0, :, :3, :3]).all() and (block[0, :, 3:, :] == np.array([4.0, 4.5])[:, None, None]).all()
        assert (block[2] == np.array([7.0, 7.5])[:, None, None]).all()
    assert open_series([result.stack]).order == "date"

    again = download_series(params)  # a rerun keeps what is there
    assert len([1 for _, u, _ in ee_session.requests if u.split("?")[0].endswith("image:computePixels")]) == 2
    assert again.kept == result.files


def test_cancel_writes_no_series_and_the_rerun_resumes(ee_session, tmp_path):
    """Cancelled while the first date downloads: no series file (stack, record, date file) is written; the
    rerun reuses that date's finished tiles and requests only the other date with scenes."""
    answer_counts(ee_session, [2, 0, 3])
    serve_by_window(ee_session)
    x0, y0 = ee_session.origin
    folder = tmp_path / "series"
    params = SeriesDownloadParams(landsat_series(), str(folder), crs="EPSG:32632", bounds=(x0, y0 - 100, x0 + 100, y0))

    def pixel_requests() -> int:
        return len([1 for _, u, _ in ee_session.requests if u.split("?")[0].endswith("image:computePixels")])

    with pytest.raises(Cancelled):
        download_series(params, Progress(is_cancelled=lambda: pixel_requests() >= 1))
    assert not list(folder.glob("*.tif")) and not list(folder.glob("*.vrt")) and not list(folder.glob("*.json"))
    result = download_series(params)
    assert pixel_requests() == 2 and len(result.files) == 3 and result.stack.exists()


# --- Processing -------------------------------------------------------------------------------------------


@pytest.fixture
def provider(qgis_processing):
    """The geodl provider registered as qgis_process does it, so the algorithms run by their ids."""
    from qgis.core import QgsApplication

    import geodl_plugin

    plugin = geodl_plugin.classFactory(None)
    plugin.initProcessing()
    yield plugin.provider
    QgsApplication.processingRegistry().removeProvider("geodl")


EXTENT = "10.0,10.01,45.0,45.01 [EPSG:4326]"


def test_processing_download_gives_a_stack_for_the_temporal_pipeline(ee_session, provider, tmp_path):
    import processing
    from qgis.core import QgsProcessingException, QgsProject

    QgsProject.instance().removeAllMapLayers()  # what earlier tests left (a tile layer, say)
    answer_counts(ee_session, [2, 0, 1, 1])
    serve_by_window(ee_session)
    common = {"PROJECT": "test-project", "EXTENT": EXTENT, "SENSOR": 1, "START": "2023-04-01", "END": "2023-08-01", "BANDS": "SR_B4,SR_B5"}
    out = processing.run("geodl:eeseries", {**common, "SCALE": 30, "OUTPUT": str(tmp_path / "ts")})
    assert out["DATES"] == "2023-04-16,2023-05-16,2023-06-16,2023-07-16"
    assert out["EMPTY_WINDOWS"] == "2023-05-01…2023-06-01"
    series = open_series([out["STACK"]])
    assert [d.isoformat() for d in series.dates] == out["DATES"].split(",") and series.bands == ("SR_B4", "SR_B5")
    assert series.info.crs_wkt and "32632" in rasterio.open(out["STACK"]).crs.to_string()  # the region's UTM zone
    assert np.isnan(series.read(0, 0, 4, 4)[1]).all()
    assert [layer.source() for layer in QgsProject.instance().mapLayers().values()] == [out["STACK"]]
    QgsProject.instance().removeAllMapLayers()
    for name in ("MAX_SCENE_CLOUD", "CS_THRESHOLD", "MONTHS", "CRS", "WORKERS"):
        definition = provider.algorithm("eeseries").parameterDefinition(name)
        assert definition.flags() & definition.Flag.FlagAdvanced, name

    with pytest.raises(QgsProcessingException, match="at least two dates"):
        processing.run("geodl:eeseries", {**common, "WINDOWS": "2023-04-01/2023-05-01", "OUTPUT": str(tmp_path / "one")})


def test_processing_export_waits_and_fetches_series_samples(ee_session, provider, gcs, monkeypatch, tmp_path):
    """Points mode with a download folder: the exported file comes back with the series sidecar, and the
    series-sample reader takes it."""
    import processing
    from google.cloud import storage
    from qgis.core import QgsFeature, QgsGeometry, QgsPointXY, QgsVectorLayer

    monkeypatch.setattr(storage, "Client", lambda *a, **k: gcs)
    answer_counts(ee_session, [1, 1])
    layer = QgsVectorLayer("Point?crs=EPSG:4326&field=cls:integer", "pts", "memory")
    for i in range(2):
        feature = QgsFeature(layer.fields())
        feature.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(10.002 + 0.002 * i, 45.005)))
        feature.setAttributes([i])
        layer.dataProvider().addFeatures([feature])
    records = tmp_path / "records.tfrecord.gz"
    with TFRecordWriter(records) as writer:
        for i in range(2):
            writer.write(
                {"B4_20230416": np.full(1, 0.1, np.float32), "B4_20230516": np.full(1, 0.2, np.float32), "class": np.array([i], np.float32)}
            )
    gcs.objects[("my-bucket", "ts/run.tfrecord.gz")] = records.read_bytes()
    folder = tmp_path / "downloads"
    out = processing.run(
        "geodl:eeseriesexport",
        {
            "MODE": 0,
            "INPUT": layer,
            "CLASS_FIELD": "cls",
            "PROJECT": "test-project",
            "EXTENT": EXTENT,
            "START": "2023-04-01",
            "END": "2023-06-01",
            "BANDS": "B4",
            "PATCH_SIZE": 1,
            "BUCKET": "my-bucket",
            "PREFIX": "ts/run",
            "DOWNLOAD_FOLDER": str(folder),
        },
    )
    ((_, _, body),) = [r for r in ee_session.requests if r[1].split("?")[0].endswith("table:export")]
    assert body["selectors"] == ["B4_20230416", "B4_20230516", "class"] and out["TASK_IDS"]
    chips = load_series_samples(folder / "run.tfrecord.gz")
    assert chips.meta["series"] == {"dates": ["2023-04-16", "2023-05-16"], "bands": ["B4"]} and chips.meta["nodata"] == NODATA
    assert chips.x.shape == (2, 1, 1, 4)


@pytest.mark.slow
def test_downloaded_series_trains_and_predicts_through_processing(ee_session, provider, tmp_path):
    """The downloaded stack goes into the temporal pipeline as it is: extractsamples (time series) → train
    (temporal family) → predict. Served scene: 10-px vertical stripes of two classes with the same spectra on
    every date, told apart only by the month their SR_B5 peaks (April or June); May has no scene."""
    import processing
    from qgis.core import QgsFeature, QgsGeometry, QgsPointXY, QgsVectorLayer

    from geodl_plugin.core.models.family import ModelFamily
    from geodl_plugin.processing.algorithms.train import FAMILY_LIST

    span, stripe = ("2023-04-01", "2023-08-01"), 300.0  # 10 px of 30 m

    def served(method: str, uri: str, body: Any):
        if not uri.split("?")[0].endswith("image:computePixels"):
            return None
        ((start, _end),) = date_ranges(tree(body["expression"])) - {span}
        grid, month = body["grid"], int(start[5:7])
        h, w, t = grid["dimensions"]["height"], grid["dimensions"]["width"], grid["affineTransform"]
        x = t["translateX"] + (np.arange(w) + 0.5) * t["scaleX"]
        late = np.broadcast_to((np.floor(x / stripe) % 2 == 1)[None, :], (h, w))
        peak = np.where(late, month == 6, month == 4)
        array = np.zeros((h, w), dtype=[("SR_B4", "<f4"), ("SR_B5", "<f4")])
        array["SR_B4"] = 0.1
        array["SR_B5"] = np.where(peak, 0.5, 0.2)
        return 200, ee_session.npy_bytes(array)

    answer_counts(ee_session, [2, 0, 1, 1])
    ee_session.handlers.append(served)
    common = {"PROJECT": "test-project", "EXTENT": EXTENT, "SENSOR": 1, "START": "2023-04-01", "END": "2023-08-01"}
    stack = processing.run(
        "geodl:eeseries", {**common, "BANDS": "SR_B4,SR_B5", "SCALE": 30, "LOAD": False, "OUTPUT": str(tmp_path / "ts")}
    )["STACK"]

    with rasterio.open(stack) as ds:
        transform, width, height = ds.transform, ds.width, ds.height
    layer = QgsVectorLayer("Point?crs=EPSG:32632&field=cls:integer", "pts", "memory")
    rng = np.random.default_rng(0)
    for row, col in zip(rng.integers(0, height, 120), rng.integers(0, width, 120)):
        x, y = transform * (col + 0.5, row + 0.5)
        feature = QgsFeature(layer.fields())
        feature.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(x, y)))
        feature.setAttributes([1 + int(np.floor(x / stripe) % 2)])
        layer.dataProvider().addFeatures([feature])
    gpkg = tmp_path / "labels.gpkg"
    processing.run("native:savefeatures", {"INPUT": layer, "OUTPUT": str(gpkg)})
    samples = tmp_path / "s.tfrecord.gz"
    processing.run(
        "geodl:extractsamples",
        {"INPUT": [stack], "LABELS": str(gpkg), "CLASS_FIELD": "cls", "PATCH_SIZE": 3, "SERIES": True, "OUTPUT": str(samples)},
    )
    assert load_series_samples(samples).meta["series"]["dates"] == ["2023-04-16", "2023-05-16", "2023-06-16", "2023-07-16"]
    temporal = next(i for i, spec in enumerate(FAMILY_LIST) if spec.family == ModelFamily.TEMPORAL)
    processing.run(
        "geodl:train",
        {
            "SAMPLES": str(samples),
            "MODEL_TYPE": temporal,
            "EPOCHS": 40,
            "BATCH_SIZE": 16,
            "LEARNING_RATE": 3e-3,
            "SPLIT": 1,
            "TEMPORAL_FILTERS": 8,
            "TEMPORAL_KERNEL_SIZE": 1,
            "TEMPORAL_HEAD_KERNEL": 1,
            "OUTPUT": str(tmp_path / "m.geodl"),
        },
    )
    out = processing.run("geodl:predict", {"INPUT": stack, "MODEL": str(tmp_path / "m.geodl"), "OUTPUT": str(tmp_path / "c.tif")})
    with rasterio.open(out["OUTPUT"]) as ds:
        assert ds.transform == transform and (ds.width, ds.height) == (width, height)
        classes = ds.read(1)
    x = transform.c + (np.arange(width) + 0.5) * transform.a
    truth = np.broadcast_to(1 + (np.floor(x / stripe) % 2)[None, :], classes.shape)
    assert (classes == truth).mean() > 0.9
