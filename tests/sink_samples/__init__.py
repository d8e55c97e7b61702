"""Per-sink sample drivers for the generic sink contract suite (tests/test_sink_contract.py).

Each module is named after a sink in ``otel_tele._components.SINKS`` and defines::

    def exercise(telemetry: otel_tele.Telemetry, n: int) -> None:
        '''Emit n records this sink persists, through the public instrumentation/event API.'''

and, for the fault suite (tests/test_fault_records.py)::

    def exercise_with_poison(telemetry: otel_tele.Telemetry, n: int) -> tuple[int, int]:
        '''``exercise`` with records in the middle that each failed their whole batch on main (lone
        surrogates, values the store refuses); returns (poison records the sink stores once repaired,
        poison records it counts failed). ``stored`` then finds ``n`` + the first.'''
"""
