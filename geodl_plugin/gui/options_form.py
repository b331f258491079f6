"""A form made from an options dataclass (``core/models/family.py``): one row per declared field, with its
label, bounds and default. The Train step shows the chosen family's options in it and the Map step the tiling
options, so every knob a family declares is in the dock without a widget written for it."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Optional

from qgis.PyQt.QtWidgets import QCheckBox, QDoubleSpinBox, QFormLayout, QGroupBox, QLineEdit, QSpinBox, QWidget

from ..core.runtime.errors import GeoDLError
from ..core.runtime.typed_json import to_jsonable


class OptionsForm(QGroupBox):
    def __init__(self, title: str, parent: Optional[QWidget] = None) -> None:
        super().__init__(title, parent)
        self.setObjectName("optionsForm")
        self._layout = QFormLayout(self)
        self._type: Optional[type] = None
        self.editors: dict[str, QWidget] = {}

    @property
    def options_type(self) -> Optional[type]:
        return self._type

    def set_options_type(self, options_type: type, values: Any = None) -> None:
        """Rebuild the rows for ``options_type``, filled with ``values`` (an instance or a dict) or defaults."""
        if options_type is not self._type:
            while self._layout.rowCount():
                self._layout.removeRow(0)
            self.editors = {}
            self._type = options_type
            hints = typing.get_type_hints(options_type)
            for field in dataclasses.fields(options_type):
                editor = _editor(hints[field.name], field)
                editor.setObjectName(f"option_{field.name}")
                self.editors[field.name] = editor
                self._layout.addRow(field.metadata.get("label", field.name.replace("_", " ")), editor)
        self.set_values(values if values is not None else options_type())
        self.setVisible(bool(self.editors))

    def set_values(self, values: Any) -> None:
        data = to_jsonable(values) if dataclasses.is_dataclass(values) else dict(values or {})
        for name, value in data.items():
            editor = self.editors.get(name)
            if isinstance(editor, QCheckBox):
                editor.setChecked(bool(value))
            elif isinstance(editor, (QSpinBox, QDoubleSpinBox)):
                editor.setValue(value)
            elif isinstance(editor, QLineEdit):
                editor.setText(",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value))

    def values(self) -> Any:
        """The options as their dataclass; its own checks (e.g. hidden units text) raise GeoDLError."""
        assert self._type is not None
        out: dict[str, Any] = {}
        for name, editor in self.editors.items():
            if isinstance(editor, QCheckBox):
                out[name] = editor.isChecked()
            elif isinstance(editor, (QSpinBox, QDoubleSpinBox)):
                out[name] = editor.value()
            elif isinstance(editor, QLineEdit):
                out[name] = editor.text().replace(";", ",")
        options = self._type(**out)
        options.validate()
        return options

    def saved_values(self) -> dict:
        """The options as JSON for the project file; {} while they are not valid (the project keeps the defaults)."""
        try:
            return to_jsonable(self.values())
        except GeoDLError:
            return {}


def _editor(kind: Any, field: dataclasses.Field) -> QWidget:
    meta = field.metadata
    if kind is bool:
        return QCheckBox()
    if kind is int:
        spin = QSpinBox()
        spin.setRange(int(meta.get("min", -(10**9))), int(meta.get("max", 10**9)))
        return spin
    if kind is float:
        dspin = QDoubleSpinBox()
        dspin.setDecimals(4)
        dspin.setRange(float(meta.get("min", -1e9)), float(meta.get("max", 1e9)))
        dspin.setSingleStep(0.05)
        return dspin
    return QLineEdit()
