"""The package map, which pyproject.toml cannot express with discovery: three top-level folders
become one import root, and every subpackage under each is found (no list to keep in step)."""

from setuptools import find_packages, setup

#: import name -> folder
ROOTS = {
    "otel_tele": "otel_tele",
    "otel_tele.exporters": "exporters",
    "otel_tele.instrumentation": "instrumentation",
}

packages = [
    f"{root}.{sub}" if sub else root
    for root, folder in ROOTS.items()
    for sub in ["", *find_packages(folder, exclude=["*.tests", "*.tests.*"])]
]
setup(packages=packages, package_dir=ROOTS)
