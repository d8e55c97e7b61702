"""OTLP protobuf requests straight to store rows: ``otel-tele serve``'s hot path (issue 15).

The generic path decodes a request into SDK records (``otel_tele._otlp_decode``), queues them, and
the store turns each back into a row (``_rows.log_row``, ``_rows.span_row``). When the store is the
only consumer of a received record, this module makes the row from the protobuf record in one pass:
no ``LogRecord``, context or ``ReadableSpan`` per record. The stored values are exactly those of the
generic path — the same decoding helpers (``attributes``, ``body_value``, the vocabulary's
``coerce_attributes``), the same scrubbing, the same encoders (``_json``, ``body_columns``) and the
same refusals (an unknown severity, ids of the wrong length fail their record alone);
``tests/test_store_otlp_rows.py`` holds the two paths to identical Parquet rows.

Each scope's records are taken a column at a time: every field of every record read in one
comprehension, the rows zipped from those lists (reading a protobuf field from Python costs more
than anything done with it, and a per-record pass pays interpreter overhead on each). Records
the columns cannot take exactly (an event name, attributes or a body the vocabulary or scrubber
would change, an id of the wrong length, a link, an error message) are marked and made one by
one by the general code, in their place.

A record that cannot be decoded is left out and counted (its reasons go to the sender), as in
``_otlp_decode``; size and Arrow checks stay the store's (``StoreSink.write_rows``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import lru_cache
from itertools import repeat
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry._logs import SeverityNumber

from otel_tele import _otlp_decode as decode
from otel_tele import _otlp_raw, semconv
from otel_tele._internal import bad_input_log, describe_error

from ._rows import _json, _Origins, body_columns

_INVALID = "otel_tele.invalid_attributes"
_SEVERITIES = frozenset(severity.value for severity in SeverityNumber)
_SEVERITIES_OR_NONE = _SEVERITIES | {0}  # 0: unspecified, stored as null
_KINDS = {number: kind.name for number, kind in decode._SPAN_KINDS.items()}
_STATUS = {number: code.name for number, code in decode._STATUS.items()}
_ERROR = 2  # OTLP STATUS_CODE_ERROR: the only status whose message the SDK keeps
_ZERO_TRACE, _ZERO_SPAN = bytes(16), bytes(8)
Row = tuple[Any, ...]


@lru_cache(maxsize=1024)
def _trace_state(header: str) -> str | None:
    """A trace state as the generic path stores it (parsed, invalid members left out)."""
    state = trace_api.TraceState.from_header([header])
    return state.to_header() if state else None


def _ids(trace_id: bytes, span_id: bytes) -> tuple[str | None, str | None]:
    """Hex ids as the SDK's contexts give them (an all-zero id is no id); wrong lengths raise."""
    if len(trace_id) != 16 or len(span_id) != 8:  # OTLP: exactly 16 and 8 bytes, never padded
        raise ValueError(f"trace id of {len(trace_id)} bytes or span id of {len(span_id)} bytes")
    return (
        trace_id.hex() if trace_id != _ZERO_TRACE else None,
        span_id.hex() if span_id != _ZERO_SPAN else None,
    )


def _failed(what: str, exc: Exception, reasons: list[str] | None) -> None:
    decode.note_reason(reasons, what, exc)
    bad_input_log.warning("otlp " + what, "OTLP receiver: a %s left out (%s)", what, describe_error(exc))


class Scrub:
    """The pipeline scrubber's record rules, as the generic path applies them on export (none when
    scrubbing is off)."""

    def __init__(self, scrubber: Any) -> None:
        self.on = bool(getattr(scrubber, "enabled", False))
        self.attributes: Callable[[Any], dict[str, Any] | None] = scrubber.attributes
        self.structure: Callable[[Any], Any] = scrubber.structure
        self.leaves_alone: Callable[[str], bool] = scrubber.leaves_alone
        self.leaves_all_alone: Callable[[list[str]], bool] = scrubber.leaves_all_alone
        self.text: Callable[[str], str] = scrubber.text
        self.name: Callable[[str], str] = lambda name: scrubber._string(name, 0, True)


#: One attribute, decoded once per distinct wire encoding: (key, value, its ``"key":value`` JSON
#: member, whether the vocabulary leaves it as it is on a record without an event name, its JSON
#: member once scrubbed — ``""`` when it cannot be joined as a member: text no encoder takes).
Entry = tuple[str, Any, str, bool, str]
_CACHED_ENTRIES = 65_536
_CACHED_BYTES = 512  # longer encodings are decoded every time: a flood of big values stays small
_CACHED_SETS = 4_096  # per (vocabulary, scrub) mode: at most ~2 MB of keys each


def _utf8(value: Any) -> bool:
    if type(value) is str:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
    elif type(value) is tuple:
        return all(_utf8(item) for item in value)
    return True


class Attributes:
    """Attributes from their wire bytes (``_otlp_raw``), as the generic path would store them.

    Most attribute encodings repeat, so each is decoded, checked and JSON-encoded once: a record
    whose attributes are all plain (the vocabulary and the scrubber leave them as they are, no key
    twice) gets its attribute JSON by joining cached members, with no dict, no coercion and no
    scrubbing pass. Any other record takes the generic steps on a dict of its decoded attributes.
    Shared by the receiver's threads: a cache entry is immutable, a lost race costs one decode.
    """

    def __init__(self, scrubber: Any) -> None:
        self.scrub = Scrub(scrubber)
        self._scrub_one: Callable[[Any], dict[str, Any] | None] = scrubber.attributes
        self._cache: dict[bytes, Entry] = {}
        #: (vocabulary, scrub) → attribute set (its encodings) → its JSON or ``""`` (see ``json``).
        self._sets: dict[tuple[bool, bool], dict[tuple[bytes, ...], str]] = {
            (vocabulary, scrub): {} for vocabulary in (True, False) for scrub in (True, False)
        }
        self.get = self._cache.get

    def entry(self, data: bytes) -> Entry:
        entry = self._cache.get(data)
        if entry is not None:
            return entry
        kv = _otlp_raw.key_value(data)
        key, value = kv.key, decode.any_value(kv.value)
        one = {key: value}
        text = semconv.to_json(one)
        plain = key != decode.LEGACY_EVENT_NAME and _utf8(key) and _utf8(value)
        coerced, problems = semconv.coerce_attributes(None, one)
        vocabulary_plain = (
            plain and not problems and coerced is one and len(one) == 1 and one.get(key) is value
        )
        scrubbed = self._scrub_one({key: value}) or {key: value}
        scrubbed_text = semconv.to_json(scrubbed)[1:-1] if plain and _utf8(scrubbed.get(key)) else ""
        entry = (key, value, text[1:-1] if plain else "", vocabulary_plain, scrubbed_text)
        if len(data) <= _CACHED_BYTES:
            if len(self._cache) >= _CACHED_ENTRIES:
                self._cache.clear()  # bounded: a flood of distinct values
            self._cache[data] = entry
        return entry

    def entries(self, raws: Any) -> list[Entry]:
        get, entry = self._cache.get, self.entry
        return [get(data) or entry(data) for data in raws]

    def plain_json(self, raws: Any) -> str | None:
        """The attribute JSON of a log record without an event name when the cached members give it
        (see :meth:`json`), else ``""``: the caller takes the generic steps."""
        return self._set_json(raws, True, self.scrub.on)

    def span_json(self, raws: Any, scrub: bool) -> str | None:
        """The attribute JSON of a span, span event (``scrub``: scrubbing is on) or link (never
        scrubbed), as the generic path stores it."""
        text = self._set_json(raws, False, scrub)
        if text != "":
            return text
        attrs = self.as_dict(self.entries(raws))
        if scrub:
            attrs = self.scrub.attributes(attrs) or attrs
        return _json(attrs)

    def _set_json(self, raws: Any, vocabulary: bool, scrub: bool) -> str | None:
        """:meth:`json` of an attribute set from its wire encodings. Whole sets repeat too (a route
        and a status, a user): a set seen before costs one lookup."""
        key = tuple(raws)
        sets = self._sets[vocabulary, scrub]
        text = sets.get(key)
        if text is not None:
            return text
        if not key:
            return None
        get, entry = self._cache.get, self.entry
        text = self.json([get(data) or entry(data) for data in key], vocabulary=vocabulary, scrub=scrub)
        if text is not None and sum(map(len, key)) <= _CACHED_BYTES:
            if len(sets) >= _CACHED_SETS:
                sets.clear()  # bounded: a flood of distinct sets
            sets[key] = text
        return text

    @staticmethod
    def as_dict(entries: list[Entry]) -> dict[str, Any]:
        return {e[0]: e[1] for e in entries}

    def json(self, entries: list[Entry], *, vocabulary: bool, scrub: bool) -> str | None:
        """The attribute JSON of ``entries`` as the generic path stores it, by joining their cached
        members, when that is exact: the vocabulary would leave each as it is (``vocabulary``: it
        applies), scrubbing is per attribute (``scrub``: it applies), no key comes twice. ``""``
        when it is not: the caller takes the generic steps."""
        if not entries:
            return None
        members = [e[4] for e in entries] if scrub else [e[2] for e in entries]
        if not all(members) or (vocabulary and not all([e[3] for e in entries])):
            return ""
        if len(entries) > 1 and len({e[0] for e in entries}) != len(entries):
            return ""  # a key sent twice: the dict keeps the last value at the first place
        return "{" + ",".join(members) + "}"


def log_rows(
    request: Any, cache: Attributes, reasons: list[str] | None = None
) -> tuple[list[Row], int, list[tuple[int, int, int]]]:
    """An ``ExportLogsServiceRequest`` (its twin, see ``_otlp_raw``) as rows of the logs dataset.
    Returns (rows, records that could not be decoded, positions (resource, scope, record) of the
    records carrying an event name: the records a domain sink may want as OTel data)."""
    origins = _Origins()
    rows: list[Row] = []
    named: list[tuple[int, int, int]] = []
    failed = 0
    now = time.time_ns()  # the receive time, for a record without an observed time (as the SDK)
    for g, group in enumerate(request.resource_logs):
        resource = decode._resource(group.resource, group.schema_url)
        for s, scoped in enumerate(group.scope_logs):
            origin = origins.of(resource, decode._scope(scoped.scope, scoped.schema_url))
            records = scoped.log_records
            if not records:
                continue
            block, irregular = _by_columns(_plain_log_rows, records, origin, cache, now)
            for r in irregular:  # in order: the rest of the block is already in place
                try:
                    row = _log_row(records[r], origin, cache, now)
                except Exception as exc:
                    failed += 1
                    _failed("log record", exc, reasons)
                    block[r] = None
                    continue
                block[r] = row
                if row[6] is not None:
                    named.append((g, s, r))
            rows.extend([row for row in block if row is not None])
    return rows, failed, named


def _by_columns(
    plain_rows: Callable[..., tuple[list[Row | None], list[int]]], records: Any, *args: Any
) -> tuple[list[Row | None], list[int]]:
    """``plain_rows(records, *args)``; should a record break it (attribute bytes that are not
    protobuf), every record of the block is taken one by one instead, so that one fails alone."""
    try:
        return plain_rows(records, *args)
    except Exception:
        return [None] * len(records), list(range(len(records)))


def _plain_log_rows(
    records: Any, origin: tuple[Any, ...], cache: Attributes, now: int
) -> tuple[list[Row | None], list[int]]:
    """The rows of one scope's log records, a column at a time (a field read for every record in
    one comprehension costs a fraction of a per-record pass), for the common record: no event name,
    attributes the vocabulary and scrubber leave alone, a string body (or none) the scrubber leaves
    alone, a known severity, both ids or none. Returns the rows and the positions of the other
    records (their row is a placeholder): :func:`_log_row` takes those one by one."""
    scrub = cache.scrub
    plain_json = cache.plain_json
    attributes = [plain_json(pb.attributes) for pb in records]
    bodies = [pb.body for pb in records]
    kinds = [body.WhichOneof("value") for body in bodies]
    texts = [
        body.string_value if kind is not None else None for body, kind in zip(bodies, kinds, strict=True)
    ]
    severities = [pb.severity_number for pb in records]
    trace_ids = [pb.trace_id for pb in records]
    span_ids = [pb.span_id for pb in records]
    known, leaves_alone = _SEVERITIES_OR_NONE, scrub.leaves_alone
    irregular = [
        r
        for r, (pb, attrs, kind, severity, trace_id, span_id) in enumerate(
            zip(records, attributes, kinds, severities, trace_ids, span_ids, strict=True)
        )
        if pb.event_name
        or attrs == ""
        or (kind is not None and kind != "string_value")
        or severity not in known
        or ((len(trace_id) != 16 or len(span_id) != 8) and (trace_id or span_id))
    ]
    if scrub.on:
        present = [text for text in texts if text is not None]
        if present and not scrub.leaves_all_alone(present):
            scrubbed = (r for r, text in enumerate(texts) if text is not None and not leaves_alone(text))
            irregular = sorted({*irregular, *scrubbed})
    zero_trace, zero_span = _ZERO_TRACE, _ZERO_SPAN
    trace_hex = [t.hex() if t and t != zero_trace else None for t in trace_ids]
    span_hex = [s.hex() if s and s != zero_span else None for s in span_ids]
    flags = [
        (pb.flags & 0xFF or 1) if t is not None else None for pb, t in zip(records, trace_hex, strict=True)
    ]
    rows: list[Row | None] = list(
        zip(
            [pb.time_unix_nano or None for pb in records],
            [pb.observed_time_unix_nano or now for pb in records],
            [severity or None for severity in severities],
            [pb.severity_text or None for pb in records],
            texts,
            ["string" if kind is not None else None for kind in kinds],
            repeat(None),  # event name: a named record is irregular
            trace_hex,
            span_hex,
            flags,
            attributes,
            [pb.dropped_attributes_count for pb in records],
            *(repeat(cell) for cell in origin),
        )
    )
    return rows, irregular


def _log_row(pb: Any, origin: tuple[Any, ...], cache: Attributes, now: int) -> Row:
    """One log record's row, every case (raises for a record that fails alone)."""
    scrub = cache.scrub
    name = pb.event_name or None
    attrs_json = cache.plain_json(pb.attributes) if name is None else ""
    if attrs_json == "":  # the generic steps, on a dict
        raw = cache.as_dict(cache.entries(pb.attributes))
        if name is None:
            candidate = raw.get(decode.LEGACY_EVENT_NAME)
            if isinstance(candidate, str) and candidate:
                name = raw.pop(decode.LEGACY_EVENT_NAME)
        attrs, problems = semconv.coerce_attributes(semconv.EVENTS.get(name) if name else None, raw)
        if problems:
            attrs[_INVALID] = semconv.to_json(problems)
        if scrub.on:
            attrs = scrub.attributes(attrs) or attrs
        attrs_json = _json(attrs)
    severity = pb.severity_number
    if severity and severity not in _SEVERITIES:
        SeverityNumber(severity)  # raises: the record fails, as in the generic path
    body = decode.body_value(pb.body) if pb.HasField("body") else None
    trace_id, span_id = pb.trace_id, pb.span_id
    if trace_id and span_id:
        trace_hex, span_hex = _ids(trace_id, span_id)
        flags = (pb.flags & 0xFF or 1) if trace_hex else None
    else:
        trace_hex = span_hex = flags = None
    if body is not None and scrub.on and not (type(body) is str and scrub.leaves_alone(body)):
        body = scrub.structure(body)
    text, kind = body_columns(body)
    return (
        pb.time_unix_nano or None,
        pb.observed_time_unix_nano or now,
        severity or None,
        pb.severity_text or None,
        text,
        kind,
        name,
        trace_hex,
        span_hex,
        flags,
        attrs_json,
        pb.dropped_attributes_count,
        *origin,
    )


def span_rows(request: Any, cache: Attributes, reasons: list[str] | None = None) -> tuple[list[Row], int]:
    """An ``ExportTraceServiceRequest`` (its twin) as rows of the spans dataset; (rows, spans not
    decodable)."""
    origins = _Origins()
    rows: list[Row] = []
    failed = 0
    for group in request.resource_spans:
        resource = decode._resource(group.resource, group.schema_url)
        for scoped in group.scope_spans:
            origin = origins.of(resource, decode._scope(scoped.scope, scoped.schema_url))
            spans = scoped.spans
            if not spans:
                continue
            block, irregular = _by_columns(_plain_span_rows, spans, origin, cache)
            for r in irregular:
                try:
                    block[r] = _span_row(spans[r], cache, origin)
                except Exception as exc:
                    failed += 1
                    _failed("span", exc, reasons)
                    block[r] = None
            rows.extend([row for row in block if row is not None])
    return rows, failed


_NO_LINKS: list[dict[str, Any]] = []  # shared by the rows of spans without links (never mutated)


def _plain_span_rows(
    spans: Any, origin: tuple[Any, ...], cache: Attributes
) -> tuple[list[Row | None], list[int]]:
    """The rows of one scope's spans a column at a time (as :func:`_plain_log_rows`), for the common
    span: ids of the right lengths, no links, no error message. Returns the rows and the positions
    of the other spans (placeholders there), which :func:`_span_row` takes one by one."""
    scrub = cache.scrub.on
    trace_ids = [pb.trace_id for pb in spans]
    span_ids = [pb.span_id for pb in spans]
    parents = [pb.parent_span_id for pb in spans]
    statuses = [pb.status for pb in spans]
    codes = [status.code for status in statuses]
    irregular = [
        r
        for r, (pb, trace_id, span_id, parent, status, code) in enumerate(
            zip(spans, trace_ids, span_ids, parents, statuses, codes, strict=True)
        )
        if len(trace_id) != 16
        or len(span_id) != 8
        or (parent and len(parent) != 8)
        or pb.links
        or (code == _ERROR and status.message)
    ]
    names = [pb.name for pb in spans]
    if scrub:
        scrubbed = {name: cache.scrub.name(name) for name in set(names)}  # names repeat: once each
        names = [scrubbed[name] for name in names]
    attributes_of = cache.span_json
    starts = [pb.start_time_unix_nano for pb in spans]
    ends = [pb.end_time_unix_nano for pb in spans]
    zero_trace, zero_span = _ZERO_TRACE, _ZERO_SPAN
    rows: list[Row | None] = list(
        zip(
            starts,
            ends,
            [end - start for start, end in zip(starts, ends, strict=True)],
            [t.hex() if t != zero_trace else None for t in trace_ids],
            [s.hex() if s != zero_span else None for s in span_ids],
            [p.hex() if p and p != zero_span else None for p in parents],
            [_trace_state(state) if state else None for state in [pb.trace_state for pb in spans]],
            [pb.flags & 0xFF or 1 for pb in spans],
            names,
            [_KINDS.get(pb.kind, "INTERNAL") for pb in spans],
            [_STATUS.get(code, "UNSET") for code in codes],
            repeat(None),  # status message: a span with one is irregular
            [attributes_of(pb.attributes, scrub) for pb in spans],
            [
                [
                    {
                        "time": e.time_unix_nano,
                        "name": e.name,
                        "attributes": attributes_of(e.attributes, scrub),
                        "dropped_attributes_count": e.dropped_attributes_count,
                    }
                    for e in events
                ]
                if events
                else []
                for events in [pb.events for pb in spans]
            ],
            repeat(_NO_LINKS),
            [pb.dropped_attributes_count for pb in spans],
            [pb.dropped_events_count for pb in spans],
            [pb.dropped_links_count for pb in spans],
            *(repeat(cell) for cell in origin),
        )
    )
    return rows, irregular


def _span_row(pb: Any, cache: Attributes, origin: tuple[Any, ...]) -> Row:
    scrub = cache.scrub
    trace_id = pb.trace_id
    trace_hex, span_hex = _ids(trace_id, pb.span_id)
    parent = pb.parent_span_id
    parent_hex = _ids(trace_id, parent)[1] if parent else None
    state = pb.trace_state
    status = pb.status
    code = status.code
    description = (status.message or None) if code == _ERROR else None
    events = [
        {
            "time": e.time_unix_nano,
            "name": e.name,
            "attributes": cache.span_json(e.attributes, scrub.on),
            "dropped_attributes_count": e.dropped_attributes_count,
        }
        for e in pb.events
    ]
    links = []
    for link in pb.links:
        link_trace, link_span = _ids(link.trace_id, link.span_id)
        links.append(
            {
                "trace_id": link_trace,
                "span_id": link_span,
                "trace_state": _trace_state(link.trace_state) if link.trace_state else None,
                "attributes": cache.span_json(link.attributes, False),  # links are not scrubbed
                "dropped_attributes_count": link.dropped_attributes_count,
            }
        )
    name = pb.name
    if scrub.on:
        name = scrub.name(name)
        if description:
            description = scrub.text(description)
    start, end = pb.start_time_unix_nano, pb.end_time_unix_nano
    return (
        start,
        end,
        end - start,
        trace_hex,
        span_hex,
        parent_hex,
        _trace_state(state) if state else None,
        pb.flags & 0xFF or 1,
        name,
        _KINDS.get(pb.kind, "INTERNAL"),
        _STATUS.get(code, "UNSET"),
        description,
        cache.span_json(pb.attributes, scrub.on),
        events,
        links,
        pb.dropped_attributes_count,
        pb.dropped_events_count,
        pb.dropped_links_count,
        *origin,
    )
