"""Instrumentation helpers: they speak only OpenTelemetry (spans, event log records, metrics).

``dds`` and ``fastapi`` (robot arm, spec 004), ``fda`` (solvers, spec 000), ``inference`` (model
serving, spec 002), ``flow`` (flow meters, specs 001/003).
"""
