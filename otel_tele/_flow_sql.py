"""The flow domain's views of the SQL catalog (``otel-tele sql``): the capture bundles under
``<data_dir>/captures/``, read by :func:`otel_tele.bundles.read_bundle` (CSV + ``manifest.json``).

``flow_bundles``: one row per bundle (its grid and what validation found); ``flow_series``: one row
per captured bin (``value`` null for an empty cell; NaN and infinities kept).
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import pyarrow as pa

from otel_tele._settings import Settings
from otel_tele._sql_view import SqlView
from otel_tele.bundles import BundleError, read_bundle
from otel_tele.exporters.capture.schema import CAPTURES_DIR, MANIFEST

BUNDLES_SCHEMA = pa.schema(
    [
        ("bundle", pa.string()),  # the bundle's folder name
        ("schema_version", pa.int64()),
        ("bins", pa.int64()),
        ("bin_size", pa.int64()),
        ("bin_unit", pa.string()),
        ("window_start", pa.string()),  # manifest window.startTimeUtc, as written
        ("series", pa.int64()),
        ("warnings", pa.string()),  # JSON array of the manifest's warnings
        ("problems", pa.string()),  # JSON array of what validation found (empty: valid)
    ]
)
SERIES_SCHEMA = pa.schema(
    [
        ("bundle", pa.string()),
        ("node_id", pa.string()),
        ("metric", pa.string()),
        ("class_id", pa.string()),
        ("bin_index", pa.int64()),
        ("value", pa.float64()),
    ]
)


def _bundle_dirs(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.glob(f"*/{MANIFEST}") if p.is_file())


def _bundles(root: Path) -> pa.Table:
    rows = []
    for folder in _bundle_dirs(root):
        try:
            bundle = read_bundle(folder, strict=False)
        except BundleError as exc:  # no readable manifest: listed with the reason
            rows.append({"bundle": folder.name, "series": 0, "problems": json.dumps(exc.problems)})
            continue
        grid, window = bundle.grid, bundle.manifest.get("window")
        rows.append(
            {
                "bundle": folder.name,
                "schema_version": bundle.schema_version,
                "bins": grid.bins if grid else None,
                "bin_size": grid.bin_size if grid else None,
                "bin_unit": grid.bin_unit if grid else None,
                "window_start": str(window.get("startTimeUtc")) if isinstance(window, dict) else None,
                "series": len(bundle.series),
                "warnings": json.dumps([w.as_json() for w in bundle.warnings]),
                "problems": json.dumps(bundle.problems),
            }
        )
    return pa.Table.from_pylist(rows, schema=BUNDLES_SCHEMA)


def _series(root: Path) -> pa.Table:
    columns: dict[str, list[object]] = {name: [] for name in SERIES_SCHEMA.names}
    for folder in _bundle_dirs(root):
        try:
            bundle = read_bundle(folder, strict=False)
        except BundleError:
            continue
        for series in bundle.series:
            for index, value in enumerate(series.values):
                for name, cell in zip(
                    SERIES_SCHEMA.names,
                    (folder.name, series.node_id, series.metric, series.class_id, index, value),
                    strict=True,
                ):
                    columns[name].append(cell)
    return pa.table(columns, schema=SERIES_SCHEMA)


def sql_views(settings: Settings) -> tuple[SqlView, ...]:
    """``flow_bundles`` and ``flow_series`` over ``<data_dir>/captures/``."""
    root = settings.data_dir / CAPTURES_DIR
    reader = f"Python (otel_tele.bundles.read_bundle) -> Arrow: {CAPTURES_DIR}/*/ CSV + {MANIFEST}"
    return (
        SqlView(
            "flow_bundles", BUNDLES_SCHEMA, "one row per capture bundle", reader, rows=partial(_bundles, root)
        ),
        SqlView(
            "flow_series",
            SERIES_SCHEMA,
            "one row per captured bin of every series",
            reader,
            rows=partial(_series, root),
        ),
    )
