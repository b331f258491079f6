"""Refuse an output that would overwrite one of the step's inputs.

An output path equal to an input path used to destroy the input (the imagery replaced by the class map, the
labels by a TFRecord). Equality is judged on the files themselves, not on the strings: a relative path, a
symlink, a hard link, another spelling on a case-insensitive disk, a QGIS source with ``|layername=``, and the
files written beside a data file (a sample file's ``.json`` sidecar, a raster's ``.aux.xml``/``.ovr``, a
GeoPackage's ``-wal``/``-shm``, a shapefile's parts) all count as the same data.

Qt-free: the Processing base class and the core parameter classes (which the dock validates) both call
:func:`check_outputs_against_inputs`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Optional

from ..runtime.errors import GeoDLError

# Files that travel with a data file ``name`` as ``name + suffix``.
SIDECAR_SUFFIXES = (".json", ".aux.xml", ".ovr", ".msk", "-wal", "-shm", "-journal")
# Shapefile parts share the stem: writing x.dbf destroys the attributes of x.shp.
SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx")


def file_part(source: str) -> Optional[str]:
    """The local file behind a QGIS/GDAL source string, or None for what is not a local file (a URL, a
    database connection, a temporary or memory output)."""
    text = str(source).strip().strip('"')
    if not text or text.upper() == "TEMPORARY_OUTPUT" or text.startswith(("memory:", "ogr:", "postgres:")):
        return None
    if "://" in text:
        return text[len("file://") :] if text.startswith("file://") else None
    text = text.split("|", 1)[0]  # "labels.gpkg|layername=points"
    if text.startswith("/vsi"):  # /vsizip/archive.zip/member → archive.zip
        parts = Path(text).parts[2:]
        for i in range(len(parts), 0, -1):
            candidate = Path(os.sep, *parts[:i])
            if candidate.is_file():
                return str(candidate)
        return None
    return os.path.expanduser(text)


def family(path: str) -> list[str]:
    """The file and the files written beside it that belong to it."""
    members = [path] + [path + s for s in SIDECAR_SUFFIXES]
    stem, ext = os.path.splitext(path)
    if ext.lower() in SHAPEFILE_PARTS:
        members += [stem + p for p in SHAPEFILE_PARTS]
    return members


def _keys(path: str) -> set[tuple]:
    """What identifies a file: its resolved, case-normalised path, and its inode when it exists (catches hard
    links and case-insensitive file systems)."""
    absolute = os.path.abspath(path)
    keys: set[tuple] = {("path", os.path.normcase(os.path.realpath(absolute)))}
    try:
        st = os.stat(absolute)
        keys.add(("inode", st.st_dev, st.st_ino))
    except OSError:
        # Not there yet: its folder may still be a symlink or another spelling of an input's folder.
        parent, name = os.path.split(absolute)
        try:
            st = os.stat(parent)
            keys.add(("in-folder", st.st_dev, st.st_ino, os.path.normcase(name)))
        except OSError:
            pass
    else:
        parent, name = os.path.split(absolute)
        try:
            pst = os.stat(parent)
            keys.add(("in-folder", pst.st_dev, pst.st_ino, os.path.normcase(name)))
        except OSError:
            pass
    return keys


def _family_keys(path: str) -> dict[tuple, str]:
    keys: dict[tuple, str] = {}
    for member in family(path):
        for key in _keys(member):
            keys.setdefault(key, member)
    return keys


def check_outputs_against_inputs(inputs: Iterable[Optional[str]], outputs: Iterable[Optional[str]]) -> None:
    """Raise :class:`GeoDLError` when an output is (or resolves to, or is a sidecar of) an input, or when two
    outputs are the same file. Inputs and outputs may be QGIS source strings; non-files are ignored."""
    input_files = [f for f in (file_part(s) for s in inputs if s) if f]
    output_files = [f for f in (file_part(s) for s in outputs if s) if f]
    if not output_files:
        return
    by_key: dict[tuple, tuple[str, str]] = {}
    for source in input_files:
        for key, member in _family_keys(source).items():
            by_key.setdefault(key, (source, member))
    for out in output_files:
        for key, out_member in _family_keys(out).items():
            if key in by_key:
                source, member = by_key[key]
                how = "is" if (out_member == out and member == source) else "would overwrite"
                what = (
                    "" if member == source and out_member == out else f" ('{os.path.basename(out_member)}' is '{os.path.basename(member)}')"
                )
                raise GeoDLError(
                    f"The output '{out}' {how} the input '{source}'{what}; writing it would destroy the input. "
                    "Choose another output file name."
                )
    seen: dict[tuple, tuple[int, str]] = {}
    for i, out in enumerate(output_files):
        for key in _keys(out):
            if key in seen and seen[key][0] != i:
                raise GeoDLError(f"The outputs '{seen[key][1]}' and '{out}' are the same file; give each output its own file name.")
            seen.setdefault(key, (i, out))
