"""Styled result layers: the class raster as a paletted layer with class names and colours, the confidence
as a colour ramp, both in one layer group; a ``.qml`` beside each file, so QGIS styles them however they are
opened (Processing outputs, drag and drop, other projects)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from qgis.core import (
    QgsColorRampShader,
    QgsLayerTreeGroup,
    QgsPalettedRasterRenderer,
    QgsProject,
    QgsRasterLayer,
    QgsRasterShader,
    QgsSingleBandPseudoColorRenderer,
    QgsStyle,
)
from qgis.PyQt.QtGui import QColor

from .core.data.classes import ClassTable
from .core.runtime.errors import GeoDLError


def style_class_layer(layer: QgsRasterLayer, classes: ClassTable) -> None:
    entries = [QgsPalettedRasterRenderer.Class(c.id, QColor(c.color), c.name) for c in classes]
    renderer = QgsPalettedRasterRenderer(layer.dataProvider(), 1, entries)
    layer.setRenderer(renderer)
    layer.triggerRepaint()


def style_confidence_layer(
    layer: QgsRasterLayer, minimum: float = 0.0, maximum: float = 1.0, ramp_name: str = "Viridis", invert: bool = False
) -> None:
    ramp = QgsStyle.defaultStyle().colorRamp(ramp_name) or QgsStyle.defaultStyle().colorRamp("Viridis")
    if invert:
        ramp.invert()
    shader_function = QgsColorRampShader(minimum, maximum, ramp)
    shader_function.setColorRampType(QgsColorRampShader.Type.Interpolated)
    shader_function.classifyColorRamp(5, -1)
    shader = QgsRasterShader()
    shader.setRasterShaderFunction(shader_function)
    renderer = QgsSingleBandPseudoColorRenderer(layer.dataProvider(), 1, shader)
    renderer.setClassificationMin(minimum)
    renderer.setClassificationMax(maximum)
    layer.setRenderer(renderer)
    layer.triggerRepaint()


def style_uncertainty_layer(layer: QgsRasterLayer, measure: str) -> None:
    """Where the model is unsure stands out bright: entropy 0 → 1 and margin 1 → 0 both run from dark to
    bright yellow (Inferno; margin's ramp inverted, since a small margin means unsure)."""
    style_confidence_layer(layer, 0.0, 1.0, "Inferno", invert=measure == "margin")


def style_value_layer(
    layer: QgsRasterLayer, minimum: Optional[float] = None, maximum: Optional[float] = None, ramp_name: str = "Viridis"
) -> None:
    """A continuous colour ramp for a regression output (value or spread), stretched over the 2nd–98th
    percentile of the values unless ``minimum``/``maximum`` are given."""
    if minimum is None or maximum is None:
        low, high = layer.dataProvider().cumulativeCut(1, 0.02, 0.98)
        minimum = low if minimum is None else minimum
        maximum = high if maximum is None else maximum
    if maximum <= minimum:
        maximum = minimum + 1.0
    ramp = QgsStyle.defaultStyle().colorRamp(ramp_name)
    shader_function = QgsColorRampShader(minimum, maximum, ramp)
    shader_function.setColorRampType(QgsColorRampShader.Type.Interpolated)
    shader_function.classifyColorRamp(7, -1)
    shader = QgsRasterShader()
    shader.setRasterShaderFunction(shader_function)
    renderer = QgsSingleBandPseudoColorRenderer(layer.dataProvider(), 1, shader)
    renderer.setClassificationMin(minimum)
    renderer.setClassificationMax(maximum)
    layer.setRenderer(renderer)
    layer.triggerRepaint()


def write_value_styles(value_path: str, spread_path: Optional[str] = None) -> None:
    """``.qml`` beside a regression's outputs: the value on Viridis, the spread on Magma."""
    layer = _open(value_path, Path(value_path).stem)
    style_value_layer(layer)
    layer.saveDefaultStyle()
    if spread_path:
        spread = _open(spread_path, Path(spread_path).stem)
        style_value_layer(spread, ramp_name="Magma")
        spread.saveDefaultStyle()


def add_value_layers(
    value_path: str, spread_path: Optional[str] = None, group_name: str = "GeoDL regression", project: Optional[QgsProject] = None
) -> list[QgsRasterLayer]:
    """Add a regression's styled value (and spread) layers to the project, in one group at the top."""
    project = project or QgsProject.instance()
    group: QgsLayerTreeGroup = project.layerTreeRoot().insertGroup(0, group_name)
    layers = [_open(value_path, f"{group_name} — value")]
    style_value_layer(layers[0])
    if spread_path:
        layers.append(_open(spread_path, f"{group_name} — spread"))
        style_value_layer(layers[1], ramp_name="Magma")
    for layer in layers:
        project.addMapLayer(layer, False)
        group.addLayer(layer)
    return layers


def _open(path: str, name: str) -> QgsRasterLayer:
    layer = QgsRasterLayer(str(path), name)
    if not layer.isValid():
        raise GeoDLError(f"QGIS cannot open the result '{path}'.")
    return layer


def write_default_styles(
    class_path: str,
    classes: ClassTable,
    confidence_path: Optional[str] = None,
    entropy_path: Optional[str] = None,
    margin_path: Optional[str] = None,
) -> None:
    """Save ``<name>.qml`` beside the outputs (QGIS's default style for that file)."""
    layer = _open(class_path, Path(class_path).stem)
    style_class_layer(layer, classes)
    layer.saveDefaultStyle()
    if confidence_path:
        conf = _open(confidence_path, Path(confidence_path).stem)
        style_confidence_layer(conf)
        conf.saveDefaultStyle()
    for path, measure in ((entropy_path, "entropy"), (margin_path, "margin")):
        if path:
            styled = _open(path, Path(path).stem)
            style_uncertainty_layer(styled, measure)
            styled.saveDefaultStyle()


def add_result_layers(
    class_path: str,
    classes: ClassTable,
    confidence_path: Optional[str] = None,
    group_name: str = "GeoDL result",
    project: Optional[QgsProject] = None,
    extra: Sequence[tuple[str, str]] = (),
    entropy_path: Optional[str] = None,
    margin_path: Optional[str] = None,
) -> list[QgsRasterLayer]:
    """Add the styled result layers to the project, in one group at the top of the layer tree."""
    project = project or QgsProject.instance()
    root = project.layerTreeRoot()
    group: QgsLayerTreeGroup = root.insertGroup(0, group_name)
    layers = []
    class_layer = _open(class_path, f"{group_name} — classes")
    style_class_layer(class_layer, classes)
    layers.append(class_layer)
    if confidence_path:
        conf = _open(confidence_path, f"{group_name} — confidence")
        style_confidence_layer(conf)
        layers.append(conf)
    for path, measure in ((entropy_path, "entropy"), (margin_path, "margin")):
        if path:
            uncertain = _open(path, f"{group_name} — {measure} (uncertainty)")
            style_uncertainty_layer(uncertain, measure)
            layers.append(uncertain)
    for path, name in extra:
        layers.append(_open(path, name))
    for layer in layers:
        project.addMapLayer(layer, False)
        group.addLayer(layer)
    return layers
