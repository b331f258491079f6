"""The class table (id, name, colour), built once from the labels and carried everywhere: into the samples,
the model file, the styled output and the accuracy report."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from ..runtime.errors import GeoDLError

NODATA_CLASS = 255  # class rasters are uint8; 255 marks "no prediction"
CLASSES_TAG = "GEODL_CLASSES"  # GeoTIFF metadata item of a class map holding its class table (JSON)

# Colours analysts recognise for the usual land-cover names; others come from a qualitative palette.
_NAMED_COLOURS = {
    "water": "#1f78b4",
    "crop": "#e6c229",
    "cropland": "#e6c229",
    "agriculture": "#e6c229",
    "tree": "#1b7837",
    "trees": "#1b7837",
    "forest": "#1b7837",
    "developed": "#d7301f",
    "urban": "#d7301f",
    "built": "#d7301f",
    "grass": "#7fbc41",
    "grassland": "#7fbc41",
    "bare": "#a6761d",
    "soil": "#a6761d",
    "snow": "#f0f0f0",
    "cloud": "#bdbdbd",
    "wetland": "#41b6c4",
    "shrub": "#b8e186",
}
_PALETTE = [
    "#4daf4a",
    "#377eb8",
    "#e41a1c",
    "#984ea3",
    "#ff7f00",
    "#ffff33",
    "#a65628",
    "#f781bf",
    "#999999",
    "#66c2a5",
    "#fc8d62",
    "#8da0cb",
    "#e78ac3",
    "#a6d854",
    "#ffd92f",
    "#e5c494",
]
_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


@dataclass(frozen=True)
class ClassInfo:
    id: int
    name: str
    color: str

    def __post_init__(self) -> None:
        if not 0 <= int(self.id) < NODATA_CLASS:
            raise GeoDLError(f"Class id {self.id} ('{self.name}') is outside 0-254; renumber the classes.")
        if not _HEX.match(self.color):
            raise GeoDLError(f"Class '{self.name}' has colour '{self.color}'; use #rrggbb.")


@dataclass
class ClassTable:
    classes: list[ClassInfo] = field(default_factory=list)

    def __post_init__(self) -> None:
        ids = [c.id for c in self.classes]
        if len(set(ids)) != len(ids):
            raise GeoDLError(f"Class ids must be unique; got {ids}.")
        names = [c.name for c in self.classes]
        if len(set(names)) != len(names):
            raise GeoDLError(f"Class names must be unique; got {names}.")

    def __len__(self) -> int:
        return len(self.classes)

    def __iter__(self):
        return iter(self.classes)

    @property
    def ids(self) -> list[int]:
        return [c.id for c in self.classes]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.classes]

    def index_of(self, class_id: int) -> int:
        """Position of a class id in the table = the model's output index for it."""
        for i, c in enumerate(self.classes):
            if c.id == class_id:
                return i
        raise GeoDLError(f"Class id {class_id} is not in the class table ({self.ids}).")

    def by_name(self, name: str) -> ClassInfo:
        for c in self.classes:
            if c.name == name:
                return c
        raise GeoDLError(f"No class named '{name}' (classes: {', '.join(self.names)}).")

    @classmethod
    def from_names(cls, names: Iterable[str]) -> ClassTable:
        """Classes in sorted name order with ids 1..n (0 stays free, as many label tools use it for
        'unlabelled')."""
        unique = sorted({str(n) for n in names})
        return cls([ClassInfo(i + 1, name, default_colour(name, i)) for i, name in enumerate(unique)])

    @classmethod
    def from_ids(cls, ids: Iterable[int]) -> ClassTable:
        unique = sorted({int(i) for i in ids})
        return cls([ClassInfo(i, f"class {i}", default_colour("", n)) for n, i in enumerate(unique)])

    def to_json(self) -> list[dict[str, Any]]:
        # STAC "classification" extension vocabulary: value, name, color_hint (hex without '#').
        return [{"value": c.id, "name": c.name, "color_hint": c.color.lstrip("#")} for c in self.classes]

    @classmethod
    def from_json(cls, items: Sequence[dict[str, Any]]) -> ClassTable:
        return cls([ClassInfo(int(i["value"]), str(i["name"]), "#" + str(i.get("color_hint", "999999")).lstrip("#")) for i in items])


def default_colour(name: str, index: int) -> str:
    return _NAMED_COLOURS.get(name.strip().lower(), _PALETTE[index % len(_PALETTE)])
