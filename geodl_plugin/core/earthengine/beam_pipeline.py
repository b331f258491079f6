"""Training sets too big for one machine (seed 002's Dataflow step): an Apache Beam pipeline that turns a point
table (10⁵–10⁷ labelled points, CSV ``x,y,class`` in a projected CRS) into TFRecord shards in Earth Engine's
table-export layout by parallel ``computePixels`` requests — grouped by cell, retried with backoff, rate
limited per worker — and writes the sidecar geodl's sample reader uses. The shards train locally or on
Vertex AI as they are (``core.data.samples.load_samples``).

Runs on the DirectRunner (here, and in the tests through the real earthengine-api client) and on Dataflow::

    python -m geodl_plugin.core.earthengine.beam_pipeline --points gs://b/points.csv --image image.json \\
        --bands B2,B3,B4,B8 --crs EPSG:32632 --scale 10 --patch-size 5 --output gs://b/geodl/train \\
        --runner DataflowRunner --project P --region europe-west4 --temp_location gs://b/tmp \\
        --max_num_workers 20 --experiments=use_runner_v2 --requirements_file requirements/beam.txt

Earth Engine allows about 40 concurrent interactive requests per project by default: keep
``max_num_workers × threads × --requests-per-second × latency`` within it, or ask for a higher quota.
This module imports Apache Beam; nothing in the plugin imports it at start-up.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional, Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from ..io.tfrecord import encode_example
from .point_shards import (
    Point,
    RateLimiter,
    ShardParams,
    cell_key,
    decode_npy,
    example_record,
    patches,
    read_points_csv,
    window_for,
    with_retries,
)

log = logging.getLogger("geodl")
HIGH_VOLUME_URL = "https://earthengine-highvolume.googleapis.com"
_limiters: dict[float, RateLimiter] = {}


def _limiter(rate: float) -> RateLimiter:
    # One bucket per worker process (DoFn instances are per thread; the quota is per process and project).
    if rate not in _limiters:
        _limiters[rate] = RateLimiter(rate)
    return _limiters[rate]


class FetchPatches(beam.DoFn):
    """(cell, points) → one ``computePixels`` request → one serialised Example per point."""

    def __init__(self, params: ShardParams) -> None:
        self.params = params
        self.retries = beam.metrics.Metrics.counter("geodl", "computePixels_retries")
        self.requests = beam.metrics.Metrics.counter("geodl", "computePixels_requests")

    def setup(self) -> None:
        import ee

        if not ee.data.is_initialized():  # on a Dataflow worker; the DirectRunner shares this process's session
            ee.Initialize(project=self.params.project or None, opt_url=HIGH_VOLUME_URL if self.params.high_volume else None)
        self.image = ee.deserializer.fromJSON(self.params.expression)

    def process(self, element: tuple[Any, Iterable[Point]]) -> Iterator[bytes]:
        import ee

        _, group = element
        points = list(group)
        params = self.params
        window = window_for(points, params)
        request = {"expression": self.image, "fileFormat": "NPY", "bandIds": list(params.bands), "grid": window.grid(params)}

        def call() -> bytes:
            _limiter(params.requests_per_second).acquire()
            self.requests.inc()
            return ee.data.computePixels(request)

        data = with_retries(call, params, f"the pixels of {len(points)} point(s) near {points[0]}", on_retry=lambda exc: self.retries.inc())
        array = decode_npy(data, params.bands, window)
        for point, patch in zip(points, patches(array, window, points, params)):
            yield encode_example(example_record(patch, point, params.bands))


def build(pipeline: beam.Pipeline, points: beam.PCollection, params: ShardParams) -> beam.PCollection:
    """points → grouped by cell → Examples → TFRecord shards (GZIP, as Earth Engine writes them)."""
    return (
        points
        | "Cell" >> beam.Map(lambda p: (cell_key(p, params), p))
        | "Group" >> beam.GroupByKey()
        | "Fetch" >> beam.ParDo(FetchPatches(params))
        | "Write"
        >> beam.io.WriteToTFRecord(
            params.output_prefix,
            file_name_suffix=".tfrecord.gz",
            num_shards=params.num_shards,
            compression_type=beam.io.filesystem.CompressionTypes.GZIP,
        )
    )


def sidecar(params: ShardParams, classes: Optional[list[dict]] = None) -> dict[str, Any]:
    """What geodl's sample reader reads beside the first shard (band order, patch size, grid)."""
    meta: dict[str, Any] = {
        "bands": list(params.bands),
        "patch_size": params.patch_size,
        "crs": params.crs,
        "pixel_size": [params.scale, params.scale],
        "source_dtype": "float32",
        "source": "earthengine computePixels (geodl beam_pipeline)",
    }
    if classes:
        meta["classes"] = classes
    return meta


def run(
    points: Sequence[Point] | str, params: ShardParams, pipeline_args: Sequence[str] = (), classes: Optional[list[dict]] = None
) -> list[Path]:
    """Run the pipeline (``pipeline_args`` choose the runner; the DirectRunner by default) on a list of points
    or a CSV path/URI, and return the local shard paths (empty for a remote output)."""
    params.validate()
    options = PipelineOptions(list(pipeline_args) or ["--runner=DirectRunner"])
    with beam.Pipeline(options=options) as pipeline:
        if isinstance(points, str):
            lines = pipeline | "Read" >> beam.io.ReadFromText(points)
            table = lines | "Parse" >> beam.FlatMap(_parse_csv_line, _header(points))
        else:
            table = pipeline | "Points" >> beam.Create(list(points))
        build(pipeline, table, params)
    prefix = Path(params.output_prefix)
    if "://" in params.output_prefix:
        return []
    shards = sorted(prefix.parent.glob(prefix.name + "-*-of-*.tfrecord.gz"))
    if shards:
        sidecar_path = Path(str(shards[0]) + ".json")
        sidecar_path.write_text(json.dumps(sidecar(params, classes), indent=2), encoding="utf-8")
    return shards


def _header(path: str) -> list[str]:
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(path) as fh:
        return fh.readline().decode().strip().split(",")


def _parse_csv_line(line: str, header: list[str]) -> Iterator[Point]:
    if line.strip() and line.strip().split(",") != header:
        yield from read_points_csv([",".join(header), line])


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", required=True, help="CSV with x,y,class in --crs (local path or gs://)")
    parser.add_argument("--image", required=True, help="the image as Earth Engine JSON (ee.serializer.toJSON)")
    parser.add_argument("--bands", required=True)
    parser.add_argument("--crs", required=True)
    parser.add_argument("--scale", type=float, required=True)
    parser.add_argument("--patch-size", type=int, default=1)
    parser.add_argument("--output", required=True)
    parser.add_argument("--cell-px", type=int, default=256)
    parser.add_argument("--requests-per-second", type=float, default=10.0)
    parser.add_argument("--ee-project", default="")
    args, pipeline_args = parser.parse_known_args(argv)
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(args.image) as fh:
        expression = fh.read().decode()
    params = ShardParams(
        expression,
        args.bands.split(","),
        args.crs,
        args.scale,
        args.output,
        args.patch_size,
        args.cell_px,
        requests_per_second=args.requests_per_second,
        project=args.ee_project,
    )
    run(args.points, params, pipeline_args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
