"""The readers behind :class:`otel_tele.robot_query.TelemetryQuery`, one per table (or question).

Each is a base of ``TelemetryQuery`` over the one read-only connection :class:`._base.TableReader`
holds, so the façade keeps spec 004's method names and signatures while each module holds one job.
"""
