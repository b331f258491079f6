"""One pixel grid and one nodata value for everything geodl asks of Earth Engine.

Samples, downloads and image exports are all computed on the same grid: by default the region's UTM zone at
the chosen pixel size, with the origin on a whole multiple of the pixel size (so two requests over
overlapping regions land on the same pixels). Without an explicit projection Earth Engine samples a
composite on its default grid (WGS84 degrees) rescaled to the pixel size, which at 45°N makes a "10 m" pixel
7.1 × 10 m: a model trained on that is applied to differently shaped pixels in the UTM download.

Masked pixels (cloudy in every scene, outside the data) are filled with :data:`NODATA` on the server and
that value is declared as nodata in every GeoTIFF and sample sidecar; the NPY and TFRecord formats carry no
mask, so without the fill they arrive as real zeros and get classified and trained on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from ..runtime.errors import GeoDLError

# A value no reflectance (≈ -0.2…1.6), index (-1…1) or embedding axis (-1…1) takes, exact in float32, and not
# NaN: Earth Engine requests must be strict JSON, and NaN is not JSON.
NODATA = -9999.0


def float_geotiff_profile(width: int, height: int, count: int, crs: Any, transform: Any) -> dict[str, Any]:
    """The rasterio profile of every GeoTIFF geodl writes from Earth Engine pixels: float32 on the given grid,
    NODATA, tiled, deflated (BigTIFF where 4 GB would not hold it)."""
    return dict(
        driver="GTiff",
        width=width,
        height=height,
        count=count,
        dtype="float32",
        crs=crs,
        transform=transform,
        nodata=NODATA,
        tiled=True,
        blockxsize=256,
        blockysize=256,
        compress="deflate",
        BIGTIFF="IF_SAFER",
    )


def utm_crs(lon: float, lat: float) -> str:
    """The UTM zone's EPSG code for a point, e.g. "EPSG:32621"."""
    zone = min(60, max(1, int((lon + 180) // 6) + 1))
    return f"EPSG:{32600 + zone if lat >= 0 else 32700 + zone}"


@dataclass(frozen=True)
class PixelGrid:
    """A north-up grid: ``crs``, pixel size ``scale`` (CRS units), top-left corner ``(x0, y0)``, size in pixels."""

    crs: str
    scale: float
    x0: float
    y0: float
    width: int
    height: int

    @property
    def crs_transform(self) -> list[float]:
        """Earth Engine's crsTransform: [xScale, xShear, xTranslate, yShear, yScale, yTranslate]."""
        return [float(self.scale), 0.0, float(self.x0), 0.0, -float(self.scale), float(self.y0)]

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return (self.x0, self.y0 - self.height * self.scale, self.x0 + self.width * self.scale, self.y0)

    def projection(self) -> Any:
        """The grid as an ``ee.Projection`` (for sampleRegions)."""
        import ee

        return ee.Projection(self.crs, self.crs_transform)

    def sidecar(self) -> dict[str, Any]:
        """The grid facts a sample sidecar carries (and the trainer copies into the model manifest)."""
        from rasterio.crs import CRS

        crs = CRS.from_user_input(self.crs)
        units = crs.linear_units if crs.is_projected else "degree"  # as core.io.raster.raster_info names them
        return {
            "crs": self.crs,
            "crs_wkt": crs.to_wkt(),
            "crs_units": str(units),
            "pixel_size": [float(self.scale), float(self.scale)],
            "crs_transform": self.crs_transform,
        }


def aligned_grid(crs: str, bounds: Sequence[float], scale: float) -> PixelGrid:
    """The grid in ``crs`` covering ``bounds`` (xmin, ymin, xmax, ymax in CRS units) with the origin snapped
    outward to whole multiples of ``scale``: every pixel edge lies on k·scale."""
    if not scale or scale <= 0:
        raise GeoDLError(f"The pixel size {scale} must be positive.")
    xmin, ymin, xmax, ymax = (float(v) for v in bounds)
    if not (xmin < xmax and ymin < ymax):
        raise GeoDLError(f"The region {tuple(bounds)} is empty; give xmin < xmax and ymin < ymax.")
    eps = 1e-9
    x0 = math.floor(xmin / scale + eps) * scale
    y0 = math.ceil(ymax / scale - eps) * scale
    width = max(1, math.ceil((xmax - x0) / scale - eps))
    height = max(1, math.ceil((y0 - ymin) / scale - eps))
    return PixelGrid(crs, float(scale), float(x0), float(y0), width, height)


def region_grid(region: Sequence[float], scale: float, crs: str = "") -> PixelGrid:
    """The default grid for a (west, south, east, north) region in degrees: its UTM zone (or ``crs``) at
    ``scale`` metres, aligned to whole pixels."""
    from rasterio.crs import CRS
    from rasterio.warp import transform_bounds

    west, south, east, north = (float(v) for v in region)
    crs = crs or utm_crs((west + east) / 2, (south + north) / 2)
    target = CRS.from_user_input(crs)
    if not target.is_projected:
        raise GeoDLError(
            f"{crs} is in degrees; a pixel size in metres needs a projected CRS. Leave the CRS empty to use the region's UTM zone."
        )
    bounds = transform_bounds(CRS.from_epsg(4326), target, west, south, east, north, densify_pts=21)
    return aligned_grid(crs, bounds, scale)


def points_region(points: Sequence[Any], margin_degrees: float = 0.001) -> tuple[float, float, float, float]:
    """A (west, south, east, north) box around points with ``x``/``y`` in degrees."""
    xs = [float(p.x) for p in points]
    ys = [float(p.y) for p in points]
    return (min(xs) - margin_degrees, min(ys) - margin_degrees, max(xs) + margin_degrees, max(ys) + margin_degrees)


def fill_masked(image: Any) -> Any:
    """``image`` with every masked pixel (inside or outside its footprint) set to :data:`NODATA`, so formats
    that carry no mask (NPY, TFRecord) still say which pixels are missing."""
    return image.unmask(NODATA, False)
