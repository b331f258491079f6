"""The model families' names and their typed options: the data half of the family table.

Everything a family can be asked to do is declared here as a dataclass field with its default, so an option
set in the dock or in Processing reaches training and prediction intact (it survives the JSON trip to the
worker, see ``runtime/typed_json.py``). The other half, what each family *does* (its trainer, predictor and
sample scorer), is the table in ``core/families.py``; it sits above the stages it wires together, while this
module sits below them so that any stage can name a family.

Field metadata drives the Processing parameters: ``label`` (shown), ``min``/``max`` (numbers), ``help``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any, Optional

from ..runtime.errors import GeoDLError


class ModelFamily(StrEnum):
    """A family's value is what a model file's manifest holds as ``mlm:architecture``."""

    PIXEL_DNN = "dnn"
    RANDOM_FOREST = "rf"
    UNET = "unet"
    FOREST_REGRESSION = "rf_regression"
    DNN_REGRESSION = "dnn_regression"
    TEMPORAL = "temporal"

    @classmethod
    def parse(cls, value: Any) -> ModelFamily:
        try:
            return cls(value)
        except ValueError:
            names = ", ".join(f.value for f in cls)
            raise GeoDLError(f"Unknown model family '{value}'; choose one of {names}.") from None


def _parse_units(text: str) -> tuple[int, ...]:
    try:
        units = tuple(int(u) for u in str(text).replace(" ", "").split(",") if u)
    except ValueError:
        units = ()
    if not units or any(u < 1 for u in units):
        raise GeoDLError(f"Hidden units '{text}' must be positive whole numbers separated by commas, e.g. 64,32.")
    return units


class _DenseLayers:
    """What the dense families share: hidden units typed as text ("64,32") in the faces, checked here."""

    hidden_units: tuple[int, ...]
    dropout: float

    def __post_init__(self) -> None:
        if isinstance(self.hidden_units, str):
            self.hidden_units = _parse_units(self.hidden_units)
        self.hidden_units = tuple(int(u) for u in self.hidden_units)

    def validate(self) -> None:
        if not self.hidden_units or any(u < 1 for u in self.hidden_units):
            raise GeoDLError("Give at least one hidden layer with at least one unit, e.g. 64.")
        _check_dropout(self.dropout)


@dataclass
class DNNParams(_DenseLayers):
    """A per-pixel dense network: z-score → Dense(relu) (+ dropout) per hidden layer → softmax."""

    hidden_units: tuple[int, ...] = field(default=(64,), metadata={"label": "Hidden units per layer, e.g. 64,32"})
    dropout: float = field(default=0.2, metadata={"label": "Dropout", "min": 0.0, "max": 0.9})


@dataclass
class ForestParams:
    """A random forest (scikit-learn), stored as plain arrays."""

    n_trees: int = field(default=200, metadata={"label": "Trees", "min": 1, "max": 5000})
    max_depth: int = field(default=20, metadata={"label": "Largest tree depth", "min": 1, "max": 100})

    def validate(self) -> None:
        if self.n_trees < 1 or self.max_depth < 1:
            raise GeoDLError("A forest needs at least one tree of depth at least 1.")


@dataclass
class UNetParams:
    """A U-Net over image patches or chips. ``depth`` 0 picks the deepest of 3, 2, 1 that fits the patches."""

    depth: int = field(default=0, metadata={"label": "Depth (poolings; 0 = deepest that fits)", "min": 0, "max": 5})
    base_filters: int = field(default=16, metadata={"label": "Filters in the first level", "min": 2, "max": 256})
    dice_weight: float = field(default=1.0, metadata={"label": "Dice loss weight", "min": 0.0, "max": 10.0})
    augment: bool = field(default=True, metadata={"label": "Augment (flips, rotations, shifts)"})
    dropout: float = field(default=0.2, metadata={"label": "Dropout", "min": 0.0, "max": 0.9})

    def validate(self) -> None:
        if self.depth < 0 or self.base_filters < 2 or self.dice_weight < 0:
            raise GeoDLError("U-Net depth must be ≥ 0, filters ≥ 2 and the Dice weight ≥ 0.")
        _check_dropout(self.dropout)


@dataclass
class TilingParams:
    """How a convolutional model walks over a raster: tiles of ``size`` px overlapping by ``overlap`` (0 = a
    quarter tile) and blended, ``batch`` tiles a call."""

    size: int = field(default=256, metadata={"label": "Tile size (px)", "min": 16, "max": 4096})
    overlap: int = field(default=0, metadata={"label": "Tile overlap (px; 0 = a quarter tile)", "min": 0, "max": 2048})
    batch: int = field(default=4, metadata={"label": "Tiles a batch", "min": 1, "max": 256})

    def validate(self) -> None:
        if self.size < 16 or self.batch < 1 or self.overlap < 0:
            raise GeoDLError("Tiles must be at least 16 px, the overlap ≥ 0 and the batch ≥ 1.")
        if self.overlap and 2 * self.overlap >= self.size:
            raise GeoDLError(
                f"A tile overlap of {self.overlap} px leaves nothing of a {self.size} px tile; use less than half the tile size."
            )


@dataclass
class ForestRegressionParams:
    """A random-forest regressor (scikit-learn), stored as plain arrays; the spread of its trees is the
    uncertainty raster."""

    n_trees: int = field(default=200, metadata={"label": "Trees", "min": 1, "max": 5000})
    max_depth: int = field(default=20, metadata={"label": "Largest tree depth", "min": 1, "max": 100})
    min_samples_leaf: int = field(default=1, metadata={"label": "Fewest samples in a leaf", "min": 1, "max": 1000})

    def validate(self) -> None:
        if self.n_trees < 1 or self.max_depth < 1 or self.min_samples_leaf < 1:
            raise GeoDLError("A forest needs at least one tree of depth ≥ 1 and leaves of ≥ 1 sample.")


@dataclass
class DNNRegressionParams(_DenseLayers):
    """A per-pixel dense network for a number: z-score → Dense(relu) per hidden layer → one linear unit in the
    target's units (its standardisation is undone inside the model)."""

    hidden_units: tuple[int, ...] = field(default=(64, 64), metadata={"label": "Hidden units per layer, e.g. 64,64"})
    dropout: float = field(default=0.0, metadata={"label": "Dropout", "min": 0.0, "max": 0.9})


@dataclass
class TemporalParams:
    """A multi-temporal network over a series (MTLCC): a bidirectional convolutional recurrent encoder (ConvGRU
    or ConvLSTM) and a convolutional softmax head; or ``stack``, the per-pixel baseline over all dates stacked.
    Trained on tiles of at most ``train_tile`` px; it predicts larger tiles (``TilingParams``)."""

    encoder: str = field(default="gru", metadata={"label": "Encoder cell: gru, lstm, or stack (per-pixel baseline over the dates stacked)"})
    filters: int = field(default=16, metadata={"label": "Recurrent filters per direction", "min": 1, "max": 512})
    kernel_size: int = field(default=3, metadata={"label": "Recurrent kernel size (px)", "min": 1, "max": 9})
    layers: int = field(default=1, metadata={"label": "Recurrent layers", "min": 1, "max": 4})
    bidirectional: bool = field(default=True, metadata={"label": "Bidirectional encoder"})
    head_kernel: int = field(default=3, metadata={"label": "Classifier kernel size (px)", "min": 1, "max": 7})
    hidden_units: tuple[int, ...] = field(default=(64,), metadata={"label": "Baseline hidden units, e.g. 64"})
    dropout: float = field(default=0.0, metadata={"label": "Dropout", "min": 0.0, "max": 0.9})
    train_tile: int = field(default=24, metadata={"label": "Training tile size (px; larger patches are cropped)", "min": 1, "max": 512})
    augment: bool = field(default=True, metadata={"label": "Augment (flips, rotations)"})

    def __post_init__(self) -> None:
        if isinstance(self.hidden_units, str):
            self.hidden_units = _parse_units(self.hidden_units)
        self.hidden_units = tuple(int(u) for u in self.hidden_units)

    def validate(self) -> None:
        if self.encoder not in ("gru", "lstm", "stack"):
            raise GeoDLError(f"Unknown encoder '{self.encoder}'; choose gru, lstm or stack.")
        if min(self.filters, self.kernel_size, self.layers, self.head_kernel, self.train_tile) < 1:
            raise GeoDLError("The temporal model's filters, kernel sizes, layers and training tile must be ≥ 1.")
        if not self.hidden_units or any(u < 1 for u in self.hidden_units):
            raise GeoDLError("Give the baseline at least one hidden layer with at least one unit, e.g. 64.")
        _check_dropout(self.dropout)


def _check_dropout(value: float) -> None:
    if not 0 <= value < 1:
        raise GeoDLError(f"Dropout must be in [0, 1); got {value}.")


# Which options dataclass each family takes. The behaviour table in core/families.py is checked against this
# one at import, so a family cannot be added to one and forgotten in the other.
FAMILY_OPTIONS: dict[ModelFamily, type] = {
    ModelFamily.PIXEL_DNN: DNNParams,
    ModelFamily.RANDOM_FOREST: ForestParams,
    ModelFamily.UNET: UNetParams,
    ModelFamily.FOREST_REGRESSION: ForestRegressionParams,
    ModelFamily.DNN_REGRESSION: DNNRegressionParams,
    ModelFamily.TEMPORAL: TemporalParams,
}


def options_for(family: ModelFamily, options: Any = None) -> Any:
    """The family's options as its dataclass: defaults for None, built from a dict (unknown keys refused)."""
    kind = FAMILY_OPTIONS[family]
    if options is None:
        return kind()
    if isinstance(options, kind):
        return options
    if isinstance(options, dict):
        known = {f.name for f in fields(kind)}
        unknown = set(options) - known
        if unknown:
            raise GeoDLError(f"The {family.value} model has no option(s) {sorted(unknown)}; it takes {sorted(known)}.")
        return kind(**options)
    raise GeoDLError(f"The {family.value} model takes {kind.__name__} options, not {type(options).__name__}.")


def unet_depth(options: UNetParams) -> Optional[int]:
    """None asks the trainer for the deepest network the patches allow."""
    return options.depth or None
