"""Per-sink sample drivers for the generic sink contract suite (tests/test_sink_contract.py).

Each module is named after a sink in ``otel_tele._components.SINKS`` and defines::

    def exercise(telemetry: otel_tele.Telemetry, n: int) -> None:
        '''Emit n records this sink persists, through the public instrumentation/event API.'''
"""
