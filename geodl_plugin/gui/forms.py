"""Building a panel from its Qt Designer form in ``ui/``.

``uic.loadUi`` puts each named child of the form on the widget as an attribute. The panel class declares those
attributes with their types, so a reader sees every widget a panel uses without opening the form.
``tests/plugin/test_panels.py`` checks the declarations against the forms and that a panel uses no undeclared
widget: mypy cannot, as qgis ships no type information (its Qt classes are ``Any`` to mypy).
"""

from __future__ import annotations

from qgis.PyQt import uic
from qgis.PyQt.QtWidgets import QWidget

from ..paths import ui_file


def load_form(widget: QWidget, name: str) -> None:
    """Build ``ui/<name>`` into ``widget``."""
    uic.loadUi(str(ui_file(name)), widget)
