"""geodl — deep learning for land-cover mapping in QGIS."""


def classFactory(iface):  # noqa: N802 - the name QGIS looks for
    from .plugin import GeoDLPlugin

    return GeoDLPlugin(iface)
