"""The package map, which pyproject.toml cannot express with discovery: three top-level folders
become one import root, and every subpackage under each is found (no list to keep in step)."""

from setuptools import Extension, find_namespace_packages, setup

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
#: The event path's hot loops in C. Optional: without a compiler the install goes on, and the package
#: uses the pure-Python twins of otel_tele/_accel.py (the same results, slower).
speedups = Extension("otel_tele._speedups", ["otel_tele/_speedups.c"], optional=True)
setup(packages=packages, package_dir=ROOTS, ext_modules=[speedups])
