"""Our four domains as registry entries (:class:`otel_tele._registry.Domain`), one module each.

Each module is registered under the ``otel_tele.domains`` entry-point group in ``pyproject.toml``;
a third-party distribution registers its own the same way.
"""
