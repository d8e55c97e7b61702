"""The general telemetry store's layout, declared once: what query code and other tools may rely on.

Under the store root (``<data_dir>/store`` or ``OTEL_TELE_STORE_DIR``), one hive-partitioned Parquet
dataset per signal::

    spans/date=2026-12-01/p-<unix_ns>-<pid>-<n>.parquet     a flushed part (small; rows in arrival
                                                            order, a Bloom filter of trace_id)
    spans/date=2026-12-01/c-<unix_ns>-<pid>-<n>.parquet     parts compacted into one (large row groups;
                                                            spans sorted by trace_id, start_time; a
                                                            Bloom filter of trace_id per row group)
    logs/date=…/…
    metrics/date=…/…                                        one row per data point
    .tmp-*, .compacting-*                                   work in progress (never ``*.parquet``)

``date`` is the UTC day the store *wrote* the row (not the record's own timestamp: a sender whose
clock is years off must not create partitions that retention deletes at once or never). Every file
is plain Parquet (zstd); a file is visible only whole (written under a dot name, fsynced, renamed).
No otel-tele is needed to read it::

    duckdb -c "SELECT name, duration_ns FROM read_parquet('telemetry/store/spans/*/*.parquet',
               hive_partitioning = true) ORDER BY duration_ns DESC LIMIT 10"
    python -c "import pyarrow.dataset as ds; print(ds.dataset('telemetry/store/logs',
               partitioning='hive').to_table().num_rows)"

Attribute sets (span, event, link, log, data point, exemplar, resource, scope) are JSON text columns
(objects keyed by attribute name). JSON, not a Parquet MAP: OTel attribute values are of mixed types
(string, int, double, bool, arrays), which a MAP's single value type would flatten to strings; one
column type holds every attribute set, new keys never change the schema, and DuckDB reads it with
``attributes->>'$."http.route"'`` (keys with dots are quoted) or ``json_extract``. NaN and infinities
are kept as the literals ``NaN``/``Infinity`` (DuckDB's JSON reads them); a lone surrogate as its
``\\udXXX`` escape.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from otel_tele._settings import Settings
from otel_tele._sql_view import SqlView
from otel_tele.domains.store import STORE_DIR

#: Bump when a column changes meaning; files carry it in their key-value metadata. 2: dropped
#: counts, exponential histograms and summaries, and ``body_type`` names the body's OTLP kind (1
#: wrote ``json`` for every non-string body). Columns are only ever added: read parts of both
#: versions together with ``union_by_name = true`` (DuckDB) or the current schema (pyarrow).
SCHEMA_VERSION = 2
VERSION_KEY = b"otel_tele.store.schema_version"
SIGNAL_KEY = b"otel_tele.store.signal"
DEFAULT_DIR_NAME = "store"
#: The dataset folder of each signal, under the store root.
SIGNALS: Mapping[str, str] = {"traces": "spans", "logs": "logs", "metrics": "metrics"}
PARTITION = "date"
TS = pa.timestamp("ns", tz="UTC")
JSON = pa.string()  # JSON text of an attribute set (an object), or of a non-string log body

_ORIGIN = (
    pa.field("resource", JSON),  # resource attributes
    pa.field("service_name", pa.string()),  # resource service.name, for the common filter
    pa.field("scope_name", pa.string()),
    pa.field("scope_version", pa.string()),
    pa.field("scope_attributes", JSON),
)
#: How many attributes (events, links) the sender dropped at its limits: OTLP's ``dropped_*_count``.
DROPPED = pa.int64()
_EVENT = pa.struct(
    [("time", TS), ("name", pa.string()), ("attributes", JSON), ("dropped_attributes_count", DROPPED)]
)
_LINK = pa.struct(
    [
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("trace_state", pa.string()),
        ("attributes", JSON),
        ("dropped_attributes_count", DROPPED),
    ]
)
_QUANTILE = pa.struct([("quantile", pa.float64()), ("value", pa.float64())])
#: A log body's OTLP kind (``body_type``): its ``body`` text is the string itself (``string``), the
#: bytes in base64 (``bytes``), or JSON text (the rest; bytes nested in an array or kvlist as base64
#: strings, as OTLP/JSON writes them); ``json``: a local record's body of no OTLP kind (and, in files
#: of schema version 1, any non-string body).
BODY_TYPES = ("string", "bool", "int", "double", "bytes", "array", "kvlist", "json")
_EXEMPLAR = pa.struct(
    [
        ("time", TS),
        ("value", pa.float64()),
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("attributes", JSON),  # the filtered attributes
    ]
)

#: Dataset folder → columns. Ids are lowercase hex (trace 32, span 16 characters), as OTLP/JSON
#: and every trace UI spell them.
COLUMNS: Mapping[str, tuple[pa.Field, ...]] = {
    "spans": (
        pa.field("start_time", TS),
        pa.field("end_time", TS),
        pa.field("duration_ns", pa.int64()),
        pa.field("trace_id", pa.string()),
        pa.field("span_id", pa.string()),
        pa.field("parent_span_id", pa.string()),  # null for a root span
        pa.field("trace_state", pa.string()),
        pa.field("trace_flags", pa.int32()),
        pa.field("name", pa.string()),
        pa.field("kind", pa.string()),  # INTERNAL, SERVER, CLIENT, PRODUCER, CONSUMER
        pa.field("status_code", pa.string()),  # UNSET, OK, ERROR
        pa.field("status_message", pa.string()),
        pa.field("attributes", JSON),
        pa.field("events", pa.list_(_EVENT)),
        pa.field("links", pa.list_(_LINK)),
        pa.field("dropped_attributes_count", DROPPED),
        pa.field("dropped_events_count", DROPPED),
        pa.field("dropped_links_count", DROPPED),
        *_ORIGIN,
    ),
    "logs": (
        pa.field("time", TS),  # the record's timestamp (null if the sender set none)
        pa.field("observed_time", TS),
        pa.field("severity_number", pa.int32()),
        pa.field("severity_text", pa.string()),
        pa.field("body", pa.string()),  # a string as is, bytes in base64, any other body as JSON text
        pa.field("body_type", pa.string()),  # one of BODY_TYPES, or null (no body)
        pa.field("event_name", pa.string()),
        pa.field("trace_id", pa.string()),
        pa.field("span_id", pa.string()),
        pa.field("trace_flags", pa.int32()),
        pa.field("attributes", JSON),
        pa.field("dropped_attributes_count", DROPPED),
        *_ORIGIN,
    ),
    "metrics": (
        pa.field("time", TS),
        pa.field("start_time", TS),
        pa.field("name", pa.string()),
        pa.field("description", pa.string()),
        pa.field("unit", pa.string()),
        pa.field("type", pa.string()),  # sum, gauge, histogram, exponential_histogram, summary
        pa.field("temporality", pa.string()),  # delta, cumulative; null for a gauge
        pa.field("is_monotonic", pa.bool_()),  # sums only
        pa.field("value_double", pa.float64()),  # sum/gauge of a double
        pa.field("value_int", pa.int64()),  # sum/gauge of an integer
        pa.field("count", pa.int64()),  # histograms and summaries: count and sum
        pa.field("sum", pa.float64()),
        pa.field("min", pa.float64()),  # histograms (both kinds)
        pa.field("max", pa.float64()),
        pa.field("bucket_counts", pa.list_(pa.int64())),  # len(explicit_bounds) + 1 buckets
        pa.field("explicit_bounds", pa.list_(pa.float64())),
        pa.field("exemplars", pa.list_(_EXEMPLAR)),
        pa.field("attributes", JSON),  # the data point's attributes
        # Exponential histograms: bucket i of a side counts values in (base^(offset+i), base^(offset+i+1)],
        # base = 2^(2^-scale); zero_count counts the values of magnitude up to zero_threshold.
        pa.field("scale", pa.int32()),
        pa.field("zero_count", pa.int64()),
        pa.field("zero_threshold", pa.float64()),  # values of magnitude up to it count as zero
        pa.field("positive_offset", pa.int32()),
        pa.field("positive_bucket_counts", pa.list_(pa.int64())),
        pa.field("negative_offset", pa.int32()),
        pa.field("negative_bucket_counts", pa.list_(pa.int64())),
        pa.field("quantile_values", pa.list_(_QUANTILE)),  # summaries: (quantile in [0, 1], value)
        *_ORIGIN,
    ),
}


def _schema(dataset: str) -> pa.Schema:
    return pa.schema(
        COLUMNS[dataset],
        metadata={VERSION_KEY: str(SCHEMA_VERSION).encode(), SIGNAL_KEY: dataset.encode()},
    )


SCHEMAS: Mapping[str, pa.Schema] = {name: _schema(name) for name in COLUMNS}
#: Parquet writer options: flushed parts and compacted files alike.
WRITE_OPTIONS: Mapping[str, Any] = {"compression": "zstd", "compression_level": 3}
COMPACTED_ROW_GROUP_ROWS = 256 * 1024
#: Per dataset, the order of the rows in a compacted (``c-``) file. Spans by trace: the row groups'
#: min/max statistics of ``trace_id`` then do not overlap, so a lookup of one trace reads one row
#: group of each compacted file (DuckDB and pyarrow skip the others by their statistics).
SORT_KEYS: Mapping[str, tuple[str, ...]] = {"spans": ("trace_id", "start_time")}
#: Rows per row group of a sorted compacted file: what a lookup of one trace reads of each file.
SORTED_ROW_GROUP_ROWS = 64 * 1024
#: Per dataset, the column every file (flushed part and compacted file alike) carries a Parquet
#: Bloom filter of, per row group: DuckDB (>= 1.2) and other readers skip a row group whose filter
#: rules a looked-up id out without reading its data — a flushed part's statistics cannot (its rows
#: are in arrival order), and a compacted file's admit one row group for any id.
BLOOM_KEYS: Mapping[str, str] = {"spans": "trace_id"}
BLOOM_FPP = 0.01


def store_root(settings: Settings) -> Path:
    """``<data_dir>/store`` unless ``store_dir`` (``OTEL_TELE_STORE_DIR``) says otherwise."""
    explicit = settings.get(STORE_DIR)
    return Path(explicit) if explicit else Path(settings.data_dir) / DEFAULT_DIR_NAME


def dataset_glob(root: str | Path, dataset: str) -> str:
    """The glob DuckDB reads one dataset with: ``read_parquet(glob, hive_partitioning = true)``."""
    if dataset not in COLUMNS:
        raise ValueError(f"unknown dataset {dataset!r}; one of {', '.join(COLUMNS)}")
    return str(Path(root) / dataset / f"{PARTITION}=*" / "*.parquet")


def _plain_type(kind: pa.DataType) -> pa.DataType:
    if pa.types.is_timestamp(kind):
        return pa.int64()
    if pa.types.is_list(kind):
        return pa.list_(_plain_type(kind.value_type))
    if pa.types.is_struct(kind):
        return pa.struct([pa.field(f.name, _plain_type(f.type)) for f in kind])
    return kind


def with_int_times(table: pa.Table) -> pa.Table:
    """``table`` with every timestamp (top level and nested) as int64 nanoseconds since the epoch:
    pyarrow turns a nanosecond timestamp into a Python value only with pandas installed, so
    ``with_int_times(table).to_pylist()`` is the way without it.

    Example::

        rows = with_int_times(pyarrow.dataset.dataset("telemetry/store/spans").to_table()).to_pylist()
    """
    return table.cast(pa.schema([pa.field(f.name, _plain_type(f.type)) for f in table.schema]))


# -- the SQL catalog (``otel-tele sql``) ------------------------------------------------------------
#: Catalog view name of each dataset, and what one of its rows is.
SQL_VIEWS: Mapping[str, tuple[str, str]] = {
    "spans": ("spans", "every span the store received (any service, any instrumentation)"),
    "logs": ("logs", "every log record (domain events too: their name is in event_name)"),
    "metrics": ("metrics", "every metric data point"),
}


def _select(root: Path, dataset: str) -> str | None:
    """The view's ``SELECT``: the declared columns of every file of the dataset.

    What DuckDB does per file per query is what a trace lookup pays for each day kept, so the view
    asks for no more than it needs: no hive partitioning (``date`` is not one of the view's columns)
    and ``union_by_name`` only when a file of another schema version is there (it binds every file's
    columns by name, about doubling that cost; files of one version have one schema, the first
    file's). A file of an older version written after the catalog opened fails a query loudly
    (DuckDB: schema mismatch), never silently."""
    files = sorted((root / dataset).glob(f"{PARTITION}=*/*.parquet"))
    if not files:
        return None
    names = ", ".join(f'"{field.name}"' for field in COLUMNS[dataset])
    pattern = dataset_glob(root, dataset).replace("'", "''")
    mixed = any(_schema_version(path) != SCHEMA_VERSION for path in files)
    options = "hive_partitioning = false" + (", union_by_name = true" if mixed else "")
    return f"SELECT {names} FROM read_parquet('{pattern}', {options})"


def _schema_version(path: Path) -> int | None:
    """The schema version a store file says it was written in (None: unreadable or unsaid)."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return _footer_version(str(path), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=4096)
def _footer_version(path: str, _mtime_ns: int, _size: int) -> int | None:
    # Keyed by modification time and size too: a file is only ever replaced whole (renamed into place).
    try:
        found = (pq.read_schema(path).metadata or {}).get(VERSION_KEY)
        return int(found) if found is not None else None
    except (OSError, ValueError, pa.ArrowException):
        return None


def sql_views(settings: Settings) -> tuple[SqlView, ...]:
    """The store's views of the SQL catalog: ``spans``, ``logs`` and ``metrics`` (DuckDB reads the
    Parquet files at query time; ids are lowercase hex already)."""
    root = store_root(settings)
    return tuple(
        SqlView(
            view,
            SCHEMAS[dataset].remove_metadata(),
            description,
            f"DuckDB read_parquet: {DEFAULT_DIR_NAME}/{dataset}/date=*/*.parquet",
            select=partial(_select, root, dataset),
            paths=(root,),
            prefetch=True,  # a few files a day once compacted: their footers are read once, at open
        )
        for dataset, (view, description) in SQL_VIEWS.items()
    )
