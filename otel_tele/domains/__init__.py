"""Our domains as registry entries (:class:`otel_tele.plugin.Domain`), one module each.

Each module is registered under the ``otel_tele.domains`` entry-point group in ``pyproject.toml``;
a third-party distribution registers its own the same way.
"""
