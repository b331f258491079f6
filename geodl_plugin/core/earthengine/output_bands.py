"""The bands every geodl classification inside Earth Engine ends with, whichever way the probabilities were
computed (the compiled pixel DNN or forest, or a Vertex AI endpoint): the class id and its probability."""

from __future__ import annotations

from typing import Any, Sequence

CLASS_BAND, CONFIDENCE_BAND = "class", "confidence"


def class_bands(probs: Any, class_ids: Sequence[int], probabilities: bool) -> Any:
    """Per-pixel probability arrays → the class id band (the model's ids), its probability, and optionally one
    band per class."""
    index = probs.arrayArgmax().arrayGet([0])
    out = index.remap(list(range(len(class_ids))), [int(c) for c in class_ids]).rename(CLASS_BAND)
    confidence = probs.arrayReduce(_reducer_max(), [0]).arrayGet([0]).rename(CONFIDENCE_BAND)
    out = out.addBands(confidence)
    if probabilities:
        out = out.addBands(probs.arrayFlatten([[f"p_{c}" for c in class_ids]]))
    return out


def _reducer_max() -> Any:
    import ee

    return ee.Reducer.max()
