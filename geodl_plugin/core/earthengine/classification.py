"""Classify a region of any size inside Earth Engine with a geodl model compiled by :mod:`.native`: the result
goes to an Earth Engine asset, or to Cloud Storage / Drive as a GeoTIFF, as a batch task the monitor watches;
a tile URL gives a look in QGIS at once (computed by Earth Engine as the map is panned).

Exported bands are ``class`` (the model's class ids) and ``confidence`` (the top probability in per cent,
0–100) in one integer type, because a GeoTIFF export needs one type for all bands and a byte per pixel and band
keeps a country-sized export small. An asset keeps ``MODE`` pyramids for the class.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from ..models.model_file import ModelBundle
from ..runtime.errors import GeoDLError
from ..runtime.progress import Progress, ensure
from .exports import MAX_PIXELS_DEFAULT, Destination, StartedExport, _description
from .native import NativeModel, check_composite_bands, check_request_size, ee_classifier_for
from .output_bands import CLASS_BAND, CONFIDENCE_BAND
from .session import ee_errors, require_connected

OUTPUTS = ("asset", "gcs", "drive")
_ASSET = re.compile(r"^projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/assets/[A-Za-z0-9_/.-]+$|^users/[^/]+/[A-Za-z0-9_/.-]+$")


@dataclass
class ClassifyParams:
    """Where and how to classify. ``region`` is (west, south, east, north) in degrees, any size."""

    region: tuple[float, float, float, float]
    scale: float
    output: str = "asset"  # asset, gcs or drive
    asset_id: str = ""
    destination: Optional[Destination] = None  # for gcs/drive
    crs: str = "EPSG:4326"
    max_pixels: int = MAX_PIXELS_DEFAULT * 100  # a continent at 10 m is ~1e12 px
    probabilities: bool = False  # one p_<id> band per class too (asset only)

    def validate(self) -> ClassifyParams:
        west, south, east, north = self.region
        if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
            raise GeoDLError(f"The region {self.region} is not (west, south, east, north) in degrees.")
        if self.scale <= 0:
            raise GeoDLError("The pixel size must be positive (metres).")
        if self.output not in OUTPUTS:
            raise GeoDLError(f"Unknown output '{self.output}'; choose asset, gcs (Cloud Storage) or drive.")
        if self.output == "asset":
            if not _ASSET.match(self.asset_id or ""):
                raise GeoDLError(f"'{self.asset_id}' is not an Earth Engine asset id; write it as projects/<cloud project>/assets/<name>.")
        else:
            if self.destination is None:
                raise GeoDLError("Give the bucket (Cloud Storage) or folder (Drive) for the GeoTIFF.")
            self.destination.kind = self.output
            self.destination.validate()
            if self.probabilities:
                raise GeoDLError("Per-class probabilities go to an asset only (a GeoTIFF keeps class and confidence).")
        return self

    def pixels(self) -> int:
        """About how many output pixels (equatorial metres per degree)."""
        west, south, east, north = self.region
        metres = 111_320.0
        width = (east - west) * metres * math.cos(math.radians((north + south) / 2)) / self.scale
        height = (north - south) * metres / self.scale
        return int(math.ceil(width) * math.ceil(height))


def compile_model(bundle: ModelBundle, composite_bands: Sequence[str], model: Optional[NativeModel] = None) -> NativeModel:
    """The model in Earth Engine form (``model`` when already compiled, e.g. by
    :func:`.native.native_model_from_file`), after checking the composite is the one it was trained on."""
    check_composite_bands(bundle, composite_bands)
    return model if model is not None else ee_classifier_for(bundle)


def classified_image(model: NativeModel, composite: Any, probabilities: bool = False) -> Any:
    image = model.apply(composite, probabilities)
    check_request_size(image, "The compiled model")
    return image


def _export_image(model: NativeModel, image: Any, probabilities: bool) -> tuple[Any, dict[str, str]]:
    """One integer type for every band: class ids and confidence in per cent."""
    integer = "toUint8" if max(model.class_ids) <= 255 else "toUint16"
    confidence = image.select(CONFIDENCE_BAND).multiply(100).round()
    out = getattr(image.select(CLASS_BAND), integer)().addBands(getattr(confidence, integer)())
    policy = {CLASS_BAND: "MODE", CONFIDENCE_BAND: "MEAN"}
    if probabilities:  # asset only: float probabilities kept exact
        probs = image.select([f"p_{c}" for c in model.class_ids])
        out = out.toFloat().addBands(probs)
        policy.update({f"p_{c}": "MEAN" for c in model.class_ids})
    return out, policy


def start_classification(
    bundle: ModelBundle,
    composite: Any,
    composite_bands: Sequence[str],
    params: ClassifyParams,
    progress: Optional[Progress] = None,
    model: Optional[NativeModel] = None,
) -> StartedExport:
    """Start the batch task that classifies the whole region; watch it with ``monitor.wait_for_tasks``."""
    import ee

    from .composites import region_geometry

    progress = ensure(progress)
    params.validate()
    model = compile_model(bundle, composite_bands, model)
    require_connected()
    with ee_errors("start the Earth Engine classification"):
        image = classified_image(model, composite, params.probabilities)
        out, policy = _export_image(model, image, params.probabilities)
        name = bundle.name
        common = dict(region=region_geometry(params.region), scale=params.scale, crs=params.crs, maxPixels=int(params.max_pixels))
        if params.output == "asset":
            description = _description(f"geodl classify {name}")
            task = ee.batch.Export.image.toAsset(out, description=description, assetId=params.asset_id, pyramidingPolicy=policy, **common)
            dest = Destination(kind="gcs", bucket="", prefix=params.asset_id)
            prefix = params.asset_id
        else:
            dest = params.destination  # type: ignore[assignment]
            description = _description(f"geodl classify {dest.prefix.rsplit('/', 1)[-1]}")
            geotiff = dict(
                description=description, fileNamePrefix=dest.prefix, fileFormat="GeoTIFF", formatOptions={"cloudOptimized": True}, **common
            )
            if params.output == "gcs":
                task = ee.batch.Export.image.toCloudStorage(out, bucket=dest.bucket, **geotiff)
            else:
                task = ee.batch.Export.image.toDrive(out, folder=dest.folder or None, **geotiff)
            prefix = dest.prefix
        task.start()
    started = StartedExport(str(task.id), task.name or "", description, dest, prefix)
    progress.update(100, f"Started Earth Engine classification {started.task_id}")
    return started


def class_palette(bundle: ModelBundle) -> list[str]:
    return [c.color.lstrip("#") for c in bundle.classes]


def classification_tile_url(
    bundle: ModelBundle, composite: Any, composite_bands: Sequence[str], model: Optional[NativeModel] = None
) -> str:
    """An XYZ URL of the classification in the class colours, for a QGIS layer: Earth Engine computes the
    tiles in view only, so this is free of any export."""
    from .composites import map_tile_url

    model = compile_model(bundle, composite_bands, model)
    image = classified_image(model, composite).select(CLASS_BAND)
    ids = model.class_ids
    # Class ids may be sparse (1, 2, 5, 7): remap to 0..n-1 so a palette of n colours covers them.
    index = image.remap(list(ids), list(range(len(ids))))
    return map_tile_url(index, {"min": 0, "max": max(len(ids) - 1, 1), "palette": class_palette(bundle)})
