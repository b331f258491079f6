"""The labelling session's class palette: ordered classes with a name and a colour.

Ids stay fixed once given (points carry the id), so renaming or reordering a class never relabels points.
The order is the palette's order (keys 1-9) and the class table's order handed to training.
"""

from __future__ import annotations

from typing import Optional

from qgis.PyQt.QtCore import QObject, pyqtSignal

from ..core.data.classes import NODATA_CLASS, ClassInfo, ClassTable, default_colour
from ..core.runtime.errors import GeoDLError


class ClassPalette(QObject):
    changed = pyqtSignal()

    def __init__(self, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self._classes: list[ClassInfo] = []

    def __len__(self) -> int:
        return len(self._classes)

    def __iter__(self):
        return iter(list(self._classes))

    def at(self, row: int) -> ClassInfo:
        return self._classes[row]

    def row_of(self, class_id: int) -> int:
        for i, c in enumerate(self._classes):
            if c.id == class_id:
                return i
        return -1

    def by_id(self, class_id: int) -> Optional[ClassInfo]:
        row = self.row_of(class_id)
        return self._classes[row] if row >= 0 else None

    def by_name(self, name: str) -> Optional[ClassInfo]:
        return next((c for c in self._classes if c.name == name), None)

    def table(self) -> ClassTable:
        return ClassTable(list(self._classes))

    def set_table(self, table: ClassTable) -> None:
        self._classes = list(table)
        self.changed.emit()

    def _check_name(self, name: str, ignore_id: Optional[int] = None) -> str:
        name = name.strip()
        if not name:
            raise GeoDLError("A class needs a name.")
        if any(c.name == name and c.id != ignore_id for c in self._classes):
            raise GeoDLError(f"There is already a class named '{name}'.")
        return name

    def add(self, name: str, color: Optional[str] = None) -> ClassInfo:
        name = self._check_name(name)
        used = {c.id for c in self._classes}
        new_id = next((i for i in range(1, NODATA_CLASS) if i not in used), None)
        if new_id is None:
            raise GeoDLError("The palette is full (254 classes).")
        if color is None:  # the name's usual colour, else the first palette colour not yet in use
            used_colours = {c.color.lower() for c in self._classes}
            color = next(
                (default_colour(name, i) for i in range(16) if default_colour(name, i).lower() not in used_colours),
                default_colour(name, len(self._classes)),
            )
        info = ClassInfo(new_id, name, color)
        self._classes.append(info)
        self.changed.emit()
        return info

    def rename(self, row: int, name: str) -> None:
        old = self._classes[row]
        self._classes[row] = ClassInfo(old.id, self._check_name(name, old.id), old.color)
        self.changed.emit()

    def recolour(self, row: int, color: str) -> None:
        old = self._classes[row]
        self._classes[row] = ClassInfo(old.id, old.name, color)
        self.changed.emit()

    def remove(self, row: int) -> ClassInfo:
        info = self._classes.pop(row)
        self.changed.emit()
        return info

    def move(self, row: int, offset: int) -> int:
        target = row + offset
        if not 0 <= target < len(self._classes):
            return row
        self._classes.insert(target, self._classes.pop(row))
        self.changed.emit()
        return target
