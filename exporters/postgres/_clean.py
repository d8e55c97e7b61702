"""Which rows of a batch are stored exactly as they came, found a column at a time.

Nearly every row from the event path is already what the store keeps: short key texts with nothing
to make visible, a timestamp in range, metadata that is a JSON object jsonb takes as it is. Checking
that per column (one ``set`` of the distinct key texts, one scan of the batch's metadata text for the
markers that need rewriting) and parsing each metadata text with the decoder's own scanner (what
``json.loads`` does, without its per-call Python frames) costs a fraction of sanitizing row by row.
A row any check doubts is left to the row-by-row path (``_rows.sanitize_row``), which decides it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from itertools import chain, repeat
from json import scanner
from operator import contains, itemgetter
from typing import Any

from .schema import MAX_KEY_CHARS, clean_text

#: Metadata text jsonb would refuse or store differently unless rewritten: NaN/Infinity literals
#: (not JSON) and escaped NULs (PostgreSQL text cannot hold them).
SUSPECT = ("NaN", "Infinity", "\\u0000")
#: The metadata key the row-by-row path writes full over-long key texts to.
TRUNCATED = "otel_tele.truncated"
#: json.loads' parser (the C scanner), minus json.loads' whitespace handling and Python frames.
_scan: Callable[[str, int], tuple[Any, int]] = scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]  # typeshed types the argument as the class itself
_NONE = type(None)
_ROW_WIDTH = 8


def column(rows: Sequence[Sequence[Any]], index: int) -> list[Any]:
    """The ``index``-th value of every row. Not ``zip(*rows)``: that makes an iterator per row, and
    the garbage collector runs on allocation counts."""
    return list(map(itemgetter(index), rows))


def valid_as_is(text: Any) -> bool:
    """JSON text jsonb accepts unchanged: no NaN/Infinity literal, no NUL escape, encodable."""
    if not isinstance(text, str) or any(marker in text for marker in SUSPECT):
        return False
    return text.isascii() or clean_text(text) is text


def clean_metadata(
    rows: Sequence[Sequence[Any]], ts_range: tuple[float, float], sources: Sequence[Any] | None = None
) -> list[dict[str, Any] | None]:
    """Per row: its metadata parsed, when the row is stored exactly as it came (the tuple itself, as
    ``sanitize_row`` would return it); ``None`` for a row ``sanitize_row`` must decide. ``sources``:
    per row, the value its metadata text was encoded from, if known (see :func:`_as_parsed`)."""
    shaped = [i for i, row in enumerate(rows) if type(row) is tuple and len(row) == _ROW_WIDTH]
    if len(shaped) < len(rows):  # a list, a row of another width: judged alone, the rest as usual
        metas: list[dict[str, Any] | None] = [None] * len(rows)
        for i, meta in zip(shaped, clean_metadata([rows[i] for i in shaped], ts_range), strict=True):
            metas[i] = meta
        return metas
    if not rows:
        return []
    event_type, component, texts, status, ts = (column(rows, i) for i in (0, 1, 3, 4, 5))
    doubtful: set[int] = set()
    _check_keys(event_type, doubtful, allow_none=False)  # None becomes "": not as it came
    _check_keys(component, doubtful, allow_none=True)
    _check_keys(status, doubtful, allow_none=True)
    low, high = ts_range
    if set(map(type, ts)) != {float} or not all(low <= t <= high for t in ts):  # NaN fails too
        doubtful.update(i for i, t in enumerate(ts) if type(t) is not float or not low <= t <= high)
    return _parse(texts, doubtful, sources)


def _check_keys(column: Sequence[Any], doubtful: set[int], *, allow_none: bool) -> None:
    """Add the rows whose key text would change (made visible, cut, or not text) to ``doubtful``."""
    types = set(map(type, column))
    if types <= {str, _NONE}:
        distinct = set(column)
    else:  # hash only str and None: another type's __eq__ could pass for a text
        doubtful.update(i for i, v in enumerate(column) if type(v) is not str and v is not None)
        distinct = {v for v in column if v is None or type(v) is str}
    changed = {v for v in distinct if v is None or len(v) > MAX_KEY_CHARS or clean_text(v) is not v}
    if allow_none:
        changed.discard(None)
    if changed:
        doubtful.update(i for i, v in enumerate(column) if (v is None or type(v) is str) and v in changed)


def _parse(
    texts: Sequence[Any], doubtful: set[int], sources: Sequence[Any] | None = None
) -> list[dict[str, Any] | None]:
    """Each metadata text parsed when it is a JSON object stored as it is (else None)."""
    strings = texts
    if not set(map(type, texts)) <= {str}:
        doubtful.update(i for i, t in enumerate(texts) if type(t) is not str)
        strings = [t for t in texts if type(t) is str]
    joined = "\n".join(strings)  # no marker holds "\n": none can span two texts
    if not joined.isascii() or any(marker in joined for marker in SUSPECT):
        doubtful.update(i for i, t in enumerate(texts) if not valid_as_is(t))
    if not doubtful:
        if sources is not None and len(sources) == len(texts) and _as_parsed(sources):
            return list(sources)
        try:
            parsed = [_scan(t, 0) for t in texts]
        except Exception:  # not JSON, leading whitespace (StopIteration), nested too deep: row by row
            parsed = None
        if parsed is not None:
            objects = [obj for obj, _ in parsed]
            if (
                [end for _, end in parsed] == list(map(len, texts))
                and set(map(type, objects)) == {dict}
                and not any(map(contains, objects, repeat(TRUNCATED)))
            ):
                return objects  # the usual batch: every metadata text an object kept as it is
    return [_object(t) if i not in doubtful else None for i, t in enumerate(texts)]


#: Value types whose JSON text parses back to an equal value of the same type (a finite float's
#: shortest repr is exact; NaN and infinities never get here: their texts are ``SUSPECT``).
_PLAIN_VALUES = frozenset({str, int, float, bool, _NONE})


def _as_parsed(sources: Sequence[Any]) -> bool:
    """Whether each of ``sources`` (the values the texts were encoded from, with none of the texts
    doubtful) is what parsing its text gives back: a dict of text keys and plain values, none of
    them the truncation key. Checked a column at a time, in C: no call per value."""
    if set(map(type, sources)) != {dict}:
        return False
    keys = set(map(type, chain.from_iterable(sources)))
    values = set(map(type, chain.from_iterable(map(dict.values, sources))))
    return keys <= {str} and values <= _PLAIN_VALUES and not any(map(contains, sources, repeat(TRUNCATED)))


def _object(text: str) -> dict[str, Any] | None:
    """``text`` parsed, when it is a JSON object (nothing before or after) kept as it is."""
    try:
        obj, end = _scan(text, 0)
    except Exception:  # not JSON, leading whitespace (StopIteration), nested too deep
        return None
    return (
        obj if type(obj) is dict and end == len(text) and TRUNCATED not in obj else None
    )  # else re-serialised
