"""toy-tele: a third-party-style otel-tele domain, one module (or package) per layer.

Nothing in otel-tele names it: the distribution registers one entry point,
``[otel_tele.domains] toy = toy_tele.domain:DOMAIN`` (see ``toy_tele-0.0.dist-info``), and otel-tele
finds its vocabulary, sink, settings and CLI command through that descriptor.

========================== ================================================================
``toy_tele.domain``        the registry entry: :data:`DOMAIN` (import strings only)
``toy_tele.semconv``       vocabulary: the ``toy.ping`` event and its typed attributes
``toy_tele.instrumentation`` :func:`ping`: emits the event through otel-tele's public API only
``toy_tele.exporter``      the ``toy`` sink (writer) with its ``schema`` and ``options``
``toy_tele.query``         reads the sink's table (through ``exporter.schema`` only)
``toy_tele.cli``           ``otel-tele toy pings``
========================== ================================================================
"""
