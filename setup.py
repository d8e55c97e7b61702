"""The package map, which pyproject.toml cannot express with discovery: three top-level folders
become one import root, and every subpackage under each is found (no list to keep in step)."""

from setuptools import find_namespace_packages, setup

#: import name -> folder
ROOTS = {
    "otel_tele": "otel_tele",
    "otel_tele.exporters": "exporters",
    "otel_tele.instrumentation": "instrumentation",
}

packages = [
    f"{root}.{sub}" if sub else root
    for root, folder in ROOTS.items()
    # Namespace discovery: a data folder (the dashboard's static/) is a package too, so its files ship
    # as that package's data, which setuptools requires of an importable folder.
    for sub in ["", *find_namespace_packages(folder, exclude=["*__pycache__*", "*.tests", "*.tests.*"])]
]
setup(packages=packages, package_dir=ROOTS)
