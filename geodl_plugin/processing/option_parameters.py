"""Processing parameters made from the families' options dataclasses (``core/models/family.py``).

Every declared option becomes an advanced parameter named ``<PREFIX>_<FIELD>`` (e.g. ``UNET_DEPTH``,
``TILE_SIZE``) with the dataclass's default and the field's label and bounds, and is read back into the
dataclass. So a knob added to a family reaches Processing without touching an algorithm, and the dock and
Processing start from the same defaults."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)


def parameter_name(prefix: str, field: dataclasses.Field) -> str:
    return f"{prefix}_{field.name}".upper()


def add_option_parameters(algorithm: QgsProcessingAlgorithm, options_type: type, prefix: str, title: str) -> None:
    hints = typing.get_type_hints(options_type)
    for field in dataclasses.fields(options_type):
        name, kind, default = parameter_name(prefix, field), hints[field.name], field.default
        label = f"{title}: {field.metadata.get('label', field.name.replace('_', ' '))}"
        if kind is bool:
            parameter: QgsProcessingParameterDefinition = QgsProcessingParameterBoolean(name, label, default)
        elif kind in (int, float):
            number_type = QgsProcessingParameterNumber.Type.Integer if kind is int else QgsProcessingParameterNumber.Type.Double
            parameter = QgsProcessingParameterNumber(name, label, number_type, default)
            if "min" in field.metadata:
                parameter.setMinimum(field.metadata["min"])
            if "max" in field.metadata:
                parameter.setMaximum(field.metadata["max"])
        else:  # sequences travel as text, e.g. hidden units "64,32"; the dataclass parses and checks them
            parameter = QgsProcessingParameterString(
                name, label, ",".join(map(str, default)) if isinstance(default, tuple) else str(default)
            )
        parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
        if "help" in field.metadata:
            parameter.setHelp(field.metadata["help"])
        algorithm.addParameter(parameter)


def read_option_parameters(algorithm: QgsProcessingAlgorithm, parameters: dict, context: Any, options_type: type, prefix: str) -> Any:
    hints = typing.get_type_hints(options_type)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(options_type):
        name, kind = parameter_name(prefix, field), hints[field.name]
        if kind is bool:
            values[field.name] = algorithm.parameterAsBoolean(parameters, name, context)
        elif kind is int:
            values[field.name] = algorithm.parameterAsInt(parameters, name, context)
        elif kind is float:
            values[field.name] = algorithm.parameterAsDouble(parameters, name, context)
        else:
            values[field.name] = algorithm.parameterAsString(parameters, name, context)
    return options_type(**values)
