"""Processing provider ``geodl``."""

from __future__ import annotations

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from ..paths import plugin_version, resource
from .algorithms import all_algorithms

PROVIDER_ID = "geodl"


class GeoDLProvider(QgsProcessingProvider):
    def id(self) -> str:
        return PROVIDER_ID

    def name(self) -> str:
        return "GeoDL"

    def longName(self) -> str:
        return f"GeoDL {plugin_version()} — deep learning for land-cover mapping"

    def icon(self) -> QIcon:
        return QIcon(str(resource("icon.svg")))

    def loadAlgorithms(self) -> None:
        for algorithm_class in all_algorithms():
            self.addAlgorithm(algorithm_class())
