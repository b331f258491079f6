"""geodl:eecomposite — a cloud-masked median composite shown as an XYZ tile layer (a quick look).

Also holds the connection and composite parameters the other Earth Engine algorithms share, so each of them
builds its image the same way through ``core.earthengine.composites``.
"""

from __future__ import annotations

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsProcessingException,
    QgsProcessingOutputString,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
    QgsRasterLayer,
)

from ...core.earthengine.composites import INDICES, S2_MASKS, SENSORS, CompositeParams
from ..base import GeoDLAlgorithm

PROJECT, KEY_FILE = "PROJECT", "KEY_FILE"
EXTENT, SENSOR, START, END, CLOUD_MASK, CS_THRESHOLD, MAX_SCENE_CLOUD, BANDS, INDICES_P = (
    "EXTENT",
    "SENSOR",
    "START",
    "END",
    "CLOUD_MASK",
    "CS_THRESHOLD",
    "MAX_SCENE_CLOUD",
    "BANDS",
    "INDICES",
)
SENSOR_LABELS = [
    "Sentinel-2 SR harmonized",
    "Landsat 8/9 Collection 2 L2",
    "Satellite Embedding V1 annual (64 bands A00-A63, 10 m; CC-BY 4.0, Google and Google DeepMind)",
]
YEAR = "YEAR"
MASK_LABELS = ["Cloud Score+ (Sentinel-2)", "SCL classes (Sentinel-2)"]


def _setting(key: str) -> str:
    try:
        from ...settings import get

        return str(get(key) or "")
    except Exception:  # noqa: BLE001 - settings unavailable (e.g. qgis_process without a profile)
        return ""


def add_connection_parameters(alg: GeoDLAlgorithm) -> None:
    alg.addParameter(
        QgsProcessingParameterString(PROJECT, "Google Cloud project (empty: the one set in the GeoDL dock)", defaultValue="", optional=True)
    )
    alg.addParameter(
        QgsProcessingParameterFile(
            KEY_FILE,
            "Service-account key file (empty: credentials from `earthengine authenticate`)",
            behavior=QgsProcessingParameterFile.Behavior.File,
            extension="json",
            optional=True,
        )
    )


def connect(alg: GeoDLAlgorithm, parameters, context):
    """Sign in (once per project) with the algorithm's or the settings' project and key."""
    from ...core.earthengine import session

    project = alg.parameterAsString(parameters, PROJECT, context).strip() or _setting("ee_project")
    key_file = alg.parameterAsFile(parameters, KEY_FILE, context) or _setting("ee_service_account_key")
    return session.ensure_connected(project, key_file=key_file)


def add_composite_parameters(alg: GeoDLAlgorithm, extent_label: str = "Region") -> None:
    alg.addParameter(QgsProcessingParameterExtent(EXTENT, extent_label))
    alg.addParameter(QgsProcessingParameterEnum(SENSOR, "Imagery source", options=SENSOR_LABELS, defaultValue=0))
    alg.addParameter(
        QgsProcessingParameterNumber(
            YEAR,
            "Year (Satellite Embedding; 0: the start date's year)",
            QgsProcessingParameterNumber.Type.Integer,
            0,
            minValue=0,
            maxValue=2100,
        )
    )
    alg.addParameter(QgsProcessingParameterString(START, "Start date (YYYY-MM-DD)", defaultValue="2023-05-01"))
    alg.addParameter(QgsProcessingParameterString(END, "End date (YYYY-MM-DD, exclusive)", defaultValue="2023-09-01"))
    for parameter in masking_parameters():
        alg.addParameter(parameter)
    alg.addParameter(
        QgsProcessingParameterString(
            BANDS, "Bands, comma-separated (empty: B2,B3,B4,B8,B11,B12, SR_B2…SR_B7 or A00…A63)", defaultValue="", optional=True
        )
    )
    alg.addParameter(
        QgsProcessingParameterEnum(INDICES_P, "Add indices", options=list(INDICES), allowMultiple=True, defaultValue=[], optional=True)
    )


def masking_parameters() -> list:
    """The cloud-masking settings every optical composite takes (a series flags them advanced)."""
    return [
        QgsProcessingParameterEnum(CLOUD_MASK, "Cloud mask (Landsat always uses QA_PIXEL)", options=MASK_LABELS, defaultValue=0),
        QgsProcessingParameterNumber(
            CS_THRESHOLD, "Cloud Score+ clear threshold (0-1)", QgsProcessingParameterNumber.Type.Double, 0.6, minValue=0.0, maxValue=1.0
        ),
        QgsProcessingParameterNumber(
            MAX_SCENE_CLOUD,
            "Leave out scenes cloudier than (%)",
            QgsProcessingParameterNumber.Type.Double,
            60.0,
            minValue=0.0,
            maxValue=100.0,
        ),
    ]


def composite_params(
    alg: GeoDLAlgorithm, parameters, context, sensors: tuple[str, ...] = SENSORS, what: str = "composite"
) -> CompositeParams:
    """The core's CompositeParams from an Earth Engine algorithm's parameters; ``sensors`` is the algorithm's
    SENSOR list (a series offers the optical ones only)."""
    extent = alg.parameterAsExtent(parameters, EXTENT, context, QgsCoordinateReferenceSystem("EPSG:4326"))
    if extent.isNull() or extent.isEmpty():
        raise QgsProcessingException(f"Give a region (extent) for the {what}.")
    bands = tuple(b.strip() for b in alg.parameterAsString(parameters, BANDS, context).split(",") if b.strip())
    params = CompositeParams(
        region=(extent.xMinimum(), extent.yMinimum(), extent.xMaximum(), extent.yMaximum()),
        start=alg.parameterAsString(parameters, START, context).strip(),
        end=alg.parameterAsString(parameters, END, context).strip(),
        sensor=sensors[alg.parameterAsEnum(parameters, SENSOR, context)],
        bands=bands,
        indices=tuple(INDICES[i] for i in alg.parameterAsEnums(parameters, INDICES_P, context)),
        cloud_mask=S2_MASKS[alg.parameterAsEnum(parameters, CLOUD_MASK, context)],
        cs_threshold=alg.parameterAsDouble(parameters, CS_THRESHOLD, context),
        max_scene_cloud=alg.parameterAsDouble(parameters, MAX_SCENE_CLOUD, context),
        year=alg.parameterAsInt(parameters, YEAR, context) if YEAR in parameters else 0,
    )
    return params


class EECompositeAlgorithm(GeoDLAlgorithm):
    NAME = "eecomposite"
    DISPLAY = "Earth Engine composite (quick look)"
    GROUP = "Earth Engine"
    REQUIRES = ("earth_engine",)
    HELP = (
        "Builds a cloud-masked median composite on Earth Engine — Sentinel-2 SR harmonized (Cloud Score+ or SCL "
        "mask, reflectance 0-1) or Landsat 8/9 Collection 2 L2 (QA_PIXEL mask, scale factors applied) — over "
        "the region and dates, with optional NDVI/NDWI — or Google's annual Satellite Embedding for a year "
        "(64 unit-length axes A00-A63 at 10 m, CC-BY 4.0; three axes shown as RGB) — and adds it as an XYZ "
        "tile layer (true colour). "
        "Nothing is downloaded; use 'Earth Engine direct download' or the exports for the pixels. Needs a "
        "Cloud project registered for Earth Engine and `earthengine authenticate` (or a service-account key)."
    )
    LOAD, TILE_URL, LAYER_URI = "LOAD", "TILE_URL", "LAYER_URI"

    def initAlgorithm(self, config=None):
        add_connection_parameters(self)
        add_composite_parameters(self)
        self.addParameter(QgsProcessingParameterBoolean(self.LOAD, "Add the tile layer to the project", True))
        self.addOutput(QgsProcessingOutputString(self.TILE_URL, "Tile URL template"))
        self.addOutput(QgsProcessingOutputString(self.LAYER_URI, "QGIS XYZ layer source"))

    def processAlgorithm(self, parameters, context, feedback):
        from ...core.earthengine import composites

        params = composite_params(self, parameters, context)

        def work(progress):
            connect(self, parameters, context)
            image = composites.build_composite(params)
            progress.update(50, "Requesting map tiles")
            return composites.map_tile_url(image, composites.default_vis(params))

        url = self.run_core(feedback, work)
        self._uri = composites.xyz_layer_uri(url)
        self._load = self.parameterAsBool(parameters, self.LOAD, context)
        self._name = f"EE {params.sensor} {params.start}…{params.end}"
        return {self.TILE_URL: url, self.LAYER_URI: self._uri}

    def postProcessAlgorithm(self, context, feedback):
        if getattr(self, "_load", False) and context.project() is not None:
            layer = QgsRasterLayer(self._uri, self._name, "wms")
            if layer.isValid():
                context.project().addMapLayer(layer)
            else:
                self.warn(feedback, "The Earth Engine tile layer could not be created; the URL is in the output.")
        return {}
