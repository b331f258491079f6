"""Imagery sources on Earth Engine: cloud-masked median composites of Sentinel-2 and Landsat 8/9, Google's
annual Satellite Embeddings, and a tile URL to look at them in QGIS.

The image built here is what the exports and the direct download send to Earth Engine; nothing is computed
until one of them (or :func:`map_tile_url`) makes a request.
"""

from __future__ import annotations

import datetime as _dt
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from ..runtime.errors import GeoDLError
from .session import ee_errors

S2_COLLECTION = "COPERNICUS/S2_SR_HARMONIZED"
CS_PLUS_COLLECTION = "GOOGLE/CLOUD_SCORE_PLUS/V1/S2_HARMONIZED"
L8_COLLECTION = "LANDSAT/LC08/C02/T1_L2"
L9_COLLECTION = "LANDSAT/LC09/C02/T1_L2"
# AlphaEarth Foundations Satellite Embedding V1 (Google and Google DeepMind, CC-BY 4.0): one image per UTM
# zone tile per year, 64 bands A00-A63 at 10 m, each pixel a unit-length vector with axes in [-1, 1]. The
# Earth Engine asset holds the native float values (the int8 quantisation with -128 as nodata is only the
# form of the COG copies in gs://alphaearth_foundations), so a float32 download needs no de-quantisation.
EMBEDDING_COLLECTION = "GOOGLE/SATELLITE_EMBEDDING/V1/ANNUAL"
EMBEDDING_BANDS = tuple(f"A{i:02d}" for i in range(64))
EMBEDDING_FIRST_YEAR = 2017
EMBEDDING_SCALE = 10.0

SENSORS = ("sentinel2", "landsat", "embedding")
OPTICAL = ("sentinel2", "landsat")
S2_MASKS = ("cloud_score_plus", "scl")
INDICES = ("NDVI", "NDWI")

S2_BANDS = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B11", "B12")
L89_BANDS = ("SR_B1", "SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B6", "SR_B7")
DEFAULT_BANDS = {
    "sentinel2": ("B2", "B3", "B4", "B8", "B11", "B12"),
    "landsat": ("SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B6", "SR_B7"),
    "embedding": EMBEDDING_BANDS,
}
# (near infrared, red, green) per sensor, for NDVI = (nir-red)/(nir+red) and NDWI = (green-nir)/(green+nir).
_INDEX_BANDS = {"sentinel2": ("B8", "B4", "B3"), "landsat": ("SR_B5", "SR_B4", "SR_B3")}
# SCL classes kept: vegetation, bare soil, water, unclassified, snow. Dropped: no data, saturated, dark area,
# cloud shadow, cloud medium/high probability, thin cirrus.
SCL_CLEAR = (4, 5, 6, 7, 11)
# QA_PIXEL bits masked: 0 fill, 1 dilated cloud, 2 cirrus, 3 cloud, 4 cloud shadow.
QA_PIXEL_MASK_BITS = 0b11111
# QA_RADSAT bits: bit n-1 is band n saturated (SR_B1…SR_B7: bits 0-6), bit 11 terrain occlusion. A saturated
# pixel's reflectance is a clipped value, not a measurement: masked like a cloud.
RADSAT_TERRAIN_OCCLUSION_BIT = 11


def radsat_mask_bits(bands: Sequence[str]) -> int:
    """The QA_RADSAT bits that matter for these SR_Bn bands (plus terrain occlusion)."""
    bits = 1 << RADSAT_TERRAIN_OCCLUSION_BIT
    for band in bands:
        if band.startswith("SR_B") and band[4:].isdigit():
            bits |= 1 << (int(band[4:]) - 1)
    return bits


def _parse_date(text: str, what: str) -> _dt.date:
    try:
        return _dt.date.fromisoformat(str(text))
    except ValueError as exc:
        raise GeoDLError(f"The {what} '{text}' is not a date; write it as YYYY-MM-DD, e.g. 2023-06-01.") from exc


@dataclass
class CompositeParams:
    """What to composite. ``region`` is (west, south, east, north) in degrees (EPSG:4326)."""

    region: tuple[float, float, float, float]
    start: str
    end: str
    sensor: str = "sentinel2"
    bands: tuple[str, ...] = ()  # empty: the sensor's defaults
    indices: tuple[str, ...] = ()  # "NDVI", "NDWI"
    cloud_mask: str = "cloud_score_plus"  # Sentinel-2 only: "cloud_score_plus" or "scl"
    cs_threshold: float = 0.6  # Cloud Score+ 'cs' at or above which a pixel is clear
    max_scene_cloud: float = 60.0  # scenes cloudier than this (percent, scene metadata) are left out
    year: int = 0  # Satellite Embedding only: the year (0: the start date's year)
    extra: dict = field(default_factory=dict)

    def embedding_year(self) -> int:
        return int(self.year) if self.year else _parse_date(self.start, "start date").year

    def band_list(self) -> list[str]:
        return list(self.bands or DEFAULT_BANDS.get(self.sensor, ()))

    def output_bands(self) -> list[str]:
        return self.band_list() + list(self.indices)

    def native_scale(self) -> float:
        return {"sentinel2": 10.0, "landsat": 30.0, "embedding": EMBEDDING_SCALE}[self.sensor]

    def validate(self) -> CompositeParams:
        if self.sensor not in SENSORS:
            raise GeoDLError(f"Unknown sensor '{self.sensor}'; choose one of {', '.join(SENSORS)}.")
        if self.sensor == "embedding":
            year, last = self.embedding_year(), _dt.date.today().year
            if not EMBEDDING_FIRST_YEAR <= year <= last:
                raise GeoDLError(
                    f"Satellite Embeddings exist for the years {EMBEDDING_FIRST_YEAR} to about {last - 1}; {year} "
                    "is outside them. Choose another year."
                )
        else:
            start, end = _parse_date(self.start, "start date"), _parse_date(self.end, "end date")
            if end <= start:
                raise GeoDLError(f"The end date {end} is not after the start date {start}; swap or widen them.")
        if len(self.region) != 4:
            raise GeoDLError("The region must be four numbers: west, south, east, north (degrees).")
        west, south, east, north = (float(v) for v in self.region)
        if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
            raise GeoDLError(
                f"The region {self.region} is not a west, south, east, north box in degrees. Give the extent in "
                "EPSG:4326 with west < east and south < north."
            )
        valid = {"sentinel2": S2_BANDS, "landsat": L89_BANDS, "embedding": EMBEDDING_BANDS}[self.sensor]
        unknown = [b for b in self.band_list() if b not in valid]
        if unknown:
            raise GeoDLError(f"Band(s) {', '.join(unknown)} do not exist for {self.sensor}; choose from {', '.join(valid)}.")
        bad = [i for i in self.indices if i not in INDICES]
        if self.sensor == "embedding" and self.indices:
            raise GeoDLError("Indices (NDVI, NDWI) are for Sentinel-2 and Landsat; Satellite Embeddings have none.")
        if bad:
            raise GeoDLError(f"Unknown index {', '.join(bad)}; geodl computes {', '.join(INDICES)}.")
        if self.sensor == "sentinel2" and self.cloud_mask not in S2_MASKS:
            raise GeoDLError(f"Unknown cloud mask '{self.cloud_mask}'; choose {' or '.join(S2_MASKS)}.")
        if not 0.0 <= self.cs_threshold <= 1.0:
            raise GeoDLError(f"The Cloud Score+ threshold {self.cs_threshold} must be between 0 and 1 (0.6 is usual).")
        if not 0.0 <= self.max_scene_cloud <= 100.0:
            raise GeoDLError(f"The scene cloud limit {self.max_scene_cloud} must be a percentage, 0 to 100.")
        return self


def region_geometry(region: Sequence[float]) -> Any:
    import ee

    west, south, east, north = (float(v) for v in region)
    return ee.Geometry.Rectangle([west, south, east, north], "EPSG:4326", False)


def _sentinel2(params: CompositeParams) -> Any:
    import ee

    geometry = region_geometry(params.region)
    collection = (
        ee.ImageCollection(S2_COLLECTION)
        .filterBounds(geometry)
        .filterDate(params.start, params.end)
        .filter(ee.Filter.lt("CLOUDY_PIXEL_PERCENTAGE", params.max_scene_cloud))
    )
    if params.cloud_mask == "cloud_score_plus":
        threshold = params.cs_threshold
        collection = collection.linkCollection(ee.ImageCollection(CS_PLUS_COLLECTION), ["cs"])

        def mask(image: Any) -> Any:
            return image.updateMask(image.select("cs").gte(threshold))

    else:

        def mask(image: Any) -> Any:
            clear = image.select("SCL").remap(list(SCL_CLEAR), [1] * len(SCL_CLEAR), 0)
            return image.updateMask(clear)

    def scale(image: Any) -> Any:
        return image.select(list(S2_BANDS)).multiply(0.0001).copyProperties(image, ["system:time_start"])

    return ee.ImageCollection(collection.map(mask).map(scale))


def _landsat(params: CompositeParams) -> Any:
    import ee

    geometry = region_geometry(params.region)
    collection = (
        ee.ImageCollection(L8_COLLECTION)
        .merge(ee.ImageCollection(L9_COLLECTION))
        .filterBounds(geometry)
        .filterDate(params.start, params.end)
        .filter(ee.Filter.lt("CLOUD_COVER", params.max_scene_cloud))
    )

    radsat_bits = radsat_mask_bits(params.band_list())

    def mask_and_scale(image: Any) -> Any:
        clear = image.select("QA_PIXEL").bitwiseAnd(QA_PIXEL_MASK_BITS).eq(0)
        clear = clear.And(image.select("QA_RADSAT").bitwiseAnd(radsat_bits).eq(0))
        optical = image.select(list(L89_BANDS)).multiply(0.0000275).add(-0.2)
        return optical.updateMask(clear).copyProperties(image, ["system:time_start"])

    return ee.ImageCollection(collection.map(mask_and_scale))


def _embedding(params: CompositeParams) -> Any:
    """The year's Satellite Embedding over the region: the UTM-zone tiles of that year, mosaicked (they do not
    overlap), float. Pixels without an embedding stay masked (and become nodata downstream)."""
    import ee

    year = params.embedding_year()
    collection = (
        ee.ImageCollection(EMBEDDING_COLLECTION)
        .filterDate(f"{year}-01-01", f"{year + 1}-01-01")
        .filterBounds(region_geometry(params.region))
    )
    return collection.mosaic().select(params.band_list()).toFloat()


def masked_collection(params: CompositeParams) -> Any:
    """The optical scenes over the region and dates, each cloud-masked and scaled to reflectance (0-1): what
    :func:`build_composite` takes the median of, and what a time series cuts into windows."""
    if params.sensor not in OPTICAL:
        raise GeoDLError(f"'{params.sensor}' has no scenes to mask; choose {' or '.join(OPTICAL)}.")
    return _sentinel2(params) if params.sensor == "sentinel2" else _landsat(params)


def median_composite(collection: Any, params: CompositeParams) -> Any:
    """The median of masked scenes with ``params``' bands and indices, float."""
    median = collection.median()
    nir, red, green = _INDEX_BANDS[params.sensor]
    image = median.select(params.band_list())
    for index in params.indices:
        pair = [nir, red] if index == "NDVI" else [green, nir]
        image = image.addBands(median.normalizedDifference(pair).rename(index))
    return image.toFloat()


def build_composite(params: CompositeParams) -> Any:
    """The imagery as an ``ee.Image``: the median composite with the chosen bands (reflectance, 0-1) and
    indices, or the year's Satellite Embedding bands."""
    params.validate()
    if params.sensor == "embedding":
        with ee_errors("build the Satellite Embedding image"):
            return _embedding(params)
    with ee_errors("build the composite"):
        return median_composite(masked_collection(params), params)


def default_vis(params: CompositeParams) -> dict[str, Any]:
    """True-colour stretch for a quick look (three embedding axes as RGB for the embedding)."""
    if params.sensor == "embedding":
        return {"bands": ["A01", "A16", "A09"], "min": -0.3, "max": 0.3}
    rgb = ["B4", "B3", "B2"] if params.sensor == "sentinel2" else ["SR_B4", "SR_B3", "SR_B2"]
    return {"bands": rgb, "min": 0.0, "max": 0.3}


def map_tile_url(image: Any, vis: Optional[dict[str, Any]] = None) -> str:
    """An XYZ URL template (``…/tiles/{z}/{x}/{y}``) for ``image`` rendered with ``vis`` (getMapId)."""
    with ee_errors("get map tiles for the composite"):
        mapid = image.getMapId(dict(vis or {}))  # Image.visualize server-side, then maps.create
    return mapid["tile_fetcher"].url_format


def xyz_layer_uri(url: str, zmin: int = 0, zmax: int = 18) -> str:
    """The data-source string of a QGIS XYZ ('wms' provider) layer for a tile URL template."""
    encoded = urllib.parse.quote(url, safe=":/{}")
    return f"type=xyz&url={encoded}&zmin={zmin}&zmax={zmax}"
