"""Mark a plugin enabled in a QGIS profile's QGIS3.ini (what the Plugin Manager's checkbox does)."""

import configparser
import sys
from pathlib import Path


def enable(profile_dir: Path, plugin: str) -> None:
    ini = profile_dir / "QGIS" / "QGIS3.ini"
    ini.parent.mkdir(parents=True, exist_ok=True)
    config = configparser.RawConfigParser()
    config.optionxform = str  # keep key case
    if ini.exists():
        config.read(ini, encoding="utf-8")
    if not config.has_section("PythonPlugins"):
        config.add_section("PythonPlugins")
    config.set("PythonPlugins", plugin, "true")
    with ini.open("w", encoding="utf-8") as fh:
        config.write(fh, space_around_delimiters=False)


if __name__ == "__main__":
    enable(Path(sys.argv[1]), sys.argv[2])
