"""The one scrubber: secrets never leave the process.

Every span, log record, domain event and metric passes through :class:`Scrubber` on the exporting
worker thread (never the caller's), before any sink and before OTLP. Two kinds of rule:

- **key rules**: an attribute, JSON member or ``name=value`` pair whose *name* looks secret
  (``password``, ``user_pwd``, ``x-auth``, ``Authorization``, ``sid``, ``card_number`` …) has its value
  replaced by ``[REDACTED]``. Names are split into words (``new_pass`` → ``new``, ``pass``;
  ``accessToken`` → ``access``, ``token``) and matched by word, or by substring for unambiguous
  stems (``password``, ``secret``, ``apikey``, ``connectionstring`` …). The vocabulary's own keys
  (``gen_ai.usage.input_tokens``) are never redacted by name.
- **value rules**, on every string whatever its name: URL userinfo, ``password=…`` in DSNs and query
  strings (quoted, escaped or not), ``Bearer``/``Basic`` credentials, JWTs, card numbers (Luhn),
  cloud access keys, private-key blocks; in URL attributes also path segments that look like tokens.
  JSON text (``params_json``, ``data_json``, inference metadata) is scrubbed member by member.

The replacement never contains the matched text. Extend with ``OTEL_TELE_SCRUB_KEYS`` (more secret
name stems), ``OTEL_TELE_SCRUB_PATTERNS`` (more value regexes, whitespace-separated), exempt names
with ``OTEL_TELE_SCRUB_ALLOW_KEYS``.

Example::

    from otel_tele._scrub import Scrubber

    scrubber = Scrubber(extra_keys=["employee_no"])
    assert scrubber.text("postgres://app:hunter2@db/x") == "postgres://[REDACTED]@db/x"
    assert scrubber.attributes({"employee_no": "42"}) == {"employee_no": "[REDACTED]"}
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import os
import re
from collections.abc import Callable, Iterable, MutableMapping, Sequence
from typing import Any

from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace import Event as SpanEvent
from opentelemetry.trace import Status
from opentelemetry.util.types import Attributes

from . import semconv
from .semconv import to_json

_log = logging.getLogger("otel_tele")
REDACTED = "[REDACTED]"
_MARK = "_otel_tele_scrubbed"
_MAX_DEPTH = 32

#: Name words that make a value secret (a name is split on ``-_. `` and camelCase boundaries) …
SECRET_WORDS: frozenset[str] = frozenset(
    {
        "password", "passwd", "passphrase", "passcode", "pwd", "secret", "auth", "authorization",
        "bearer", "credential", "credentials", "cookie", "sessid", "sid", "csrf", "xsrf", "otp", "totp",
        "dsn", "ssn", "cvv", "cvc", "jwt", "apikey", "privatekey", "accesskey",
    }
)  # fmt: skip
#: … or, being common words otherwise (``latency_per_token_ms``), only as the name's last word.
SECRET_LAST_WORDS: frozenset[str] = frozenset(
    {"token", "pass", "pw", "pin", "sig", "signature", "session", "refresh", "salt", "nonce"}
)
#: Stems matched anywhere in the normalised name (lower case, no separators).
SECRET_STEMS: tuple[str, ...] = (
    "passw", "passphrase", "secret", "apikey", "authorization", "credential", "privatekey",
    "accesskey", "signingkey", "encryptionkey", "masterkey", "cookie", "signature", "sessionid",
    "databaseurl", "connectionstring", "connstr", "cardnumber", "creditcard", "ccnumber", "authtoken",
    "accesstoken", "refreshtoken",
)  # fmt: skip
#: Attributes whose value is a URL or a path: token-like path segments are redacted there too.
URL_KEYS: frozenset[str] = frozenset({"url.full", "url.path", "http.target", "http.url", "url.original"})

_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")
_NAME = r"[A-Za-z_][A-Za-z0-9_.\-]{0,63}"
#: ``name=value`` / ``name: value`` pairs in free text (DSNs, query strings, log lines, bodies).
_PAIR = re.compile(
    r"(?P<q>[\"']?)(?P<k>" + _NAME + r")(?P=q)(?P<sep>\s*[=:]\s*)"
    r"(?P<v>'(?:[^'\\]|\\.)*'?|\"(?:[^\"\\]|\\.)*\"?|[^\s&;,'\"}\]]+)"
)
_VALUE_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.S),
     REDACTED),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]{1,15}://)[^/\s@?#]+@"), r"\1" + REDACTED + "@"),
    (re.compile(r"(?i)\b(bearer|basic|digest|token|negotiate|apikey)(\s+)[A-Za-z0-9\-._~+/:]{8,}=*"),
     r"\1\2" + REDACTED),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), REDACTED),
    (re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b"), REDACTED),
    (re.compile(r"\bAIza[0-9A-Za-z_\-]{35}"), REDACTED),
    (re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})"), REDACTED),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), REDACTED),
    (re.compile(r"\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,}"), REDACTED),
)  # fmt: skip
_CARD = re.compile(r"(?<![\d.])[2-6](?:[ -]?\d){12,18}(?![\d.])")
_PATH_TOKEN = re.compile(r"(?<=/)(?=[^/?#]*\d)(?=[^/?#]*[A-Za-z])[A-Za-z0-9_\-~.]{20,}(?=[/?#]|$)")
#: What every rule but the card rule needs somewhere in the text (pairs need ``=`` or ``:``) …
_RULES_TRIGGER = (
    r"[=:@]|-----BEGIN|eyJ|A(?:KIA|SIA|GPA|IDA|ROA|NPA|NVA|IPA)|AIza|gh[pousr]_|github_pat|xox|_live_|_test_"
    r"|(?i:bearer|basic|digest|token|negotiate|apikey)\s"
)
#: … and what the card rule needs (the start of every ``_CARD`` match: a 2-6 and 12 more digits,
#: spaced or not). Cheap pre-checks: most values cost one search (both triggers in one pattern), and
#: a string with a run of digits (an id, a sequence number) costs the card rule alone.
_CARD_TRIGGER = r"[2-6](?:[ -]?\d){12}"
_RULES_ONLY_TRIGGER = re.compile(_RULES_TRIGGER)
_CARD_ONLY_TRIGGER = re.compile(_CARD_TRIGGER)
_ANY_TRIGGER = re.compile(f"{_RULES_TRIGGER}|{_CARD_TRIGGER}")
#: The parts of ``_ANY_TRIGGER`` that substring tests cannot decide alone, each led by a literal so
#: the regex engine skips ahead to it instead of trying a dozen alternatives at every position.
_CLOUD_KEY_TRIGGER = re.compile(r"A(?:KIA|SIA|GPA|IDA|ROA|NPA|NVA|IPA|Iza)")
_GITHUB_TRIGGER = re.compile(r"g(?:h[pousr]_|ithub_pat)")
_DIGITS = b"0123456789"
_SCHEME_TRIGGER = re.compile(r"(?i:bearer|basic|digest|token|negotiate|apikey)\s")


def _may_trigger(value: str) -> bool:
    """``_ANY_TRIGGER.search(value) is not None``, found at a third of its cost for ASCII text
    (the most common log body and attribute): substring tests first, each regex only behind the
    literal it starts with. Non-ASCII text takes the regex itself, whose case-insensitive match
    knows letters ``str.lower`` does not (long s, dotless i, the Kelvin sign)."""
    if not value.isascii():
        return _ANY_TRIGGER.search(value) is not None
    return _rule_may_trigger(value) or _card_may_trigger(value)


def _rule_may_trigger(value: str) -> bool:
    """``_may_trigger`` of ASCII ``value`` for every rule but the card rule."""
    if (
        "=" in value
        or ":" in value
        or "@" in value
        or "eyJ" in value
        or "xox" in value
        or "-----BEGIN" in value
        or "_live_" in value
        or "_test_" in value
        or ("A" in value and _CLOUD_KEY_TRIGGER.search(value) is not None)
        or ("g" in value and _GITHUB_TRIGGER.search(value) is not None)
    ):
        return True
    lowered = value.lower()
    return (
        "bearer" in lowered
        or "basic" in lowered
        or "digest" in lowered
        or "token" in lowered
        or "negotiate" in lowered
        or "apikey" in lowered
    ) and _SCHEME_TRIGGER.search(value) is not None


def _card_may_trigger(value: str) -> bool:
    """``_may_trigger`` of ASCII ``value`` for the card rule: it needs 13 digits, counted in C
    (bytes.translate) before the regex is tried."""
    return (
        len(value) >= 13
        and len(value) - len(value.encode().translate(None, _DIGITS)) >= 13
        and _CARD_ONLY_TRIGGER.search(value) is not None
    )


def _joined_may_trigger(joined: str) -> bool:
    """``_may_trigger`` of texts joined by :data:`_JOINT` (False: no text has a trigger). The card
    regex runs only if some text has 13 digits: a card match cannot span a joint, and a column of
    ids of a dozen digits each would otherwise send it through every digit of the column."""
    if not joined.isascii():
        return _ANY_TRIGGER.search(joined) is not None
    if _rule_may_trigger(joined):
        return True
    digits = joined.encode().translate(None, _NOT_DIGITS_OR_JOINT)
    return (
        len(digits) >= 13
        and max(map(len, digits.split(_JOINT_BYTE))) >= 13
        and _CARD_ONLY_TRIGGER.search(joined) is not None
    )


_JSON_STARTS = ("{", "[")
#: Joins texts whose triggers are tested at once: no trigger contains it, and it is neither a space
#: (a scheme's ``token\s``) nor a digit or a card's separator.
_JOINT = "\x00"
_JOINT_BYTE = _JOINT.encode()
_NOT_DIGITS_OR_JOINT = bytes(b for b in range(256) if b not in b"0123456789\x00")
#: A text of a joined column that starts as JSON or with a space (``str.isspace``'s, ASCII or not).
_SPECIAL_START = re.compile(r"\x00[\s{\[]")  # led by a literal: found by a fast scan


_CACHED_STRING_CHARS = 256
_CACHED_STRINGS = 16_384


def _luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"[ -]", "", match.group())
    return REDACTED if 13 <= len(digits) <= 19 and _luhn(digits) else match.group()


def _vocabulary_keys() -> frozenset[str]:
    keys = {attr.key for event in semconv.EVENTS.values() for attr in event.attributes}
    keys.update(label for metric in semconv.METRICS for label in metric.labels)
    return frozenset(keys)


class Scrubber:
    """Configured once per pipeline (``Pipeline.scrubber``); thread-safe, never raises outward."""

    def __init__(
        self,
        *,
        extra_keys: Iterable[str] = (),
        allow_keys: Iterable[str] = (),
        extra_patterns: Iterable[str] = (),
        enabled: bool = True,
    ) -> None:
        self.enabled = enabled
        extra = [re.sub(r"[^a-z0-9]", "", key.lower()) for key in extra_keys]
        self._stems = SECRET_STEMS + tuple(key for key in extra if key)
        self._allow = frozenset(key.lower() for key in allow_keys) | _vocabulary_keys()
        self._extra = tuple(re.compile(pattern) for pattern in extra_patterns)
        self._secret_cache: dict[str, bool] = {}
        # Most attribute strings repeat (run ids, phases, model names, routes): a short string's
        # scrubbed form is remembered, so a repeat costs one dict lookup instead of the value rules.
        self._string_cache: dict[str, str] = {}
        self._url_cache: dict[str, str] = {}  # the same for URLs and span names (path rules too)
        self._plain_keys: dict[Any, bool] = {}

    @classmethod
    def from_settings(cls, settings: Any) -> Scrubber:
        return cls(
            extra_keys=settings.scrub_keys,
            allow_keys=settings.scrub_allow_keys,
            extra_patterns=settings.scrub_patterns,
            enabled=settings.scrub,
        )

    # -- names ------------------------------------------------------------------------------------
    def is_secret_key(self, key: Any) -> bool:
        """Whether a value under ``key`` is redacted whatever it holds."""
        name = str(key)
        cached = self._secret_cache.get(name)
        if cached is None:
            cached = self._judge(name)
            if len(self._secret_cache) < 65_536:  # hostile key floods must not grow memory forever
                self._secret_cache[name] = cached
        return cached

    def is_plain_key(self, key: Any) -> bool:
        """Whether ``attributes`` leaves a number under ``key`` alone (the name is neither secret
        nor a URL's); remembered per key."""
        plain = self._plain_keys.get(key)
        return plain if plain is not None else self._is_plain_key(key)

    def _is_plain_key(self, key: Any) -> bool:
        """Whether a value under ``key`` is scrubbed by its content alone (the name is neither
        secret nor a URL's); remembered per key, bounded like the other caches."""
        plain = isinstance(key, str) and key not in URL_KEYS and not self.is_secret_key(key)
        if len(self._plain_keys) < 65_536:
            self._plain_keys[key] = plain
        return plain

    def _judge(self, name: str) -> bool:
        lowered = name.lower()
        if lowered in self._allow:
            return False
        words = [w.lower() for w in _WORD_SPLIT.split(name) if w]
        if any(word in SECRET_WORDS for word in words) or (words and words[-1] in SECRET_LAST_WORDS):
            return True
        flat = "".join(words)
        return flat == "key" or any(stem in flat for stem in self._stems)

    # -- values -----------------------------------------------------------------------------------
    def text(self, value: str, *, url: bool = False) -> str:
        """``value`` with every secret the value rules find replaced."""
        if not self.enabled or not value:
            return value
        if not _may_trigger(value):
            pass  # most values: no rule can match
        elif _RULES_ONLY_TRIGGER.search(value) is not None:
            for pattern, replacement in _VALUE_RULES:
                value = pattern.sub(replacement, value)
            value = self._pairs(value)
            value = _CARD.sub(_card, value)
        elif _CARD_ONLY_TRIGGER.search(value) is not None:
            value = _CARD.sub(_card, value)
        for pattern in self._extra:
            value = pattern.sub(REDACTED, value)
        if url:
            value = _PATH_TOKEN.sub(REDACTED, value)
        return value

    def leaves_alone(self, value: str) -> bool:
        """Whether :meth:`structure` would give ``value`` (a str) back unchanged, known from the
        cheap pre-checks alone: no value rule's trigger, not JSON text, no extra pattern. ``False``
        decides nothing (the value takes the whole way). Saves unique strings (log bodies, ids) the
        string cache, which they would only churn.

        Example: ``scrubber.leaves_alone("request 7 handled")`` is ``True``."""
        return (
            not self._extra
            and value[:1] not in _JSON_STARTS
            and not value[:1].isspace()
            and not _may_trigger(value)
        )

    def leaves_all_alone(self, values: Sequence[str]) -> bool:
        """Whether :meth:`leaves_alone` holds for every one of ``values`` (a column of log bodies or
        attribute strings), its trigger test run once on them joined by :data:`_JOINT`: each
        pre-check looks for a literal or an unanchored pattern that no joint is part of, so whatever
        it finds in one value it finds in the joined text, which can only raise false alarms
        (``False`` decides nothing: each value then takes its own test).

        Example: ``scrubber.leaves_all_alone(["request 7 handled", "request 8 handled"])`` is ``True``."""
        if self._extra or len(values) < 2:
            return False
        joined = _JOINT.join(values)
        # A value that starts as JSON or with a space: tested alone (``leaves_alone``'s first tests;
        # a joint inside a value only sends the column that way too).
        first = values[0][:1]
        if first in _JSON_STARTS or first.isspace() or _SPECIAL_START.search(joined) is not None:
            return False
        return not _joined_may_trigger(joined)

    def _pairs(self, text: str) -> str:
        """``name=value`` pairs with a secret name get their value redacted. A pair whose name is
        not secret is passed over only up to its value, which may itself hold a pair
        (``failed: password=…``)."""
        out: list[str] = []
        pos = 0
        while (match := _PAIR.search(text, pos)) is not None:
            if not self.is_secret_key(match.group("k")):
                out.append(text[pos : match.start("v")])
                pos = match.start("v")
                continue
            quote, raw = match.group("q"), match.group("v")
            wrap = raw[0] if raw[:1] in ("'", '"') else ""
            out.append(text[pos : match.start()])
            out.append(f"{quote}{match.group('k')}{quote}{match.group('sep')}{wrap}{REDACTED}{wrap}")
            pos = match.end()
        if not out:
            return text
        out.append(text[pos:])
        return "".join(out)

    def value(self, key: str, value: Any, depth: int = 0) -> Any:
        """One attribute value (or JSON member) under ``key``, scrubbed."""
        if self.is_secret_key(key):
            if isinstance(value, list | tuple):
                return type(value)(REDACTED for _ in value) if value else value
            return REDACTED if value is not None else value
        return self.structure(value, depth, url=key in URL_KEYS)

    def structure(self, value: Any, depth: int = 0, *, url: bool = False) -> Any:
        """Any JSON-like value scrubbed: dict members by name and value, strings by the value rules
        (JSON text member by member)."""
        if depth > _MAX_DEPTH:
            return REDACTED
        if isinstance(value, str):
            return self._string(value, depth, url)
        if isinstance(value, dict):
            return {k: self.value(str(k), v, depth + 1) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.structure(item, depth + 1, url=url) for item in value)
        if isinstance(value, bytes | bytearray):
            # Bytes stay bytes (a binary log body is stored as such) unless a secret was in them.
            text = bytes(value).decode("utf-8", "replace")
            scrubbed = self._string(text, depth, url)
            return value if scrubbed == text else scrubbed
        return value

    def _string(self, value: str, depth: int, url: bool) -> str:
        if len(value) > _CACHED_STRING_CHARS:
            return self._scrub_string(value, depth, url)
        cache = self._url_cache if url else self._string_cache
        cached = cache.get(value)
        if cached is None:
            cached = self._scrub_string(value, depth, url)
            if len(cache) >= _CACHED_STRINGS:  # bounded: a flood of distinct values
                cache.clear()
            cache[value] = cached
        return cached

    def _scrub_string(self, value: str, depth: int, url: bool) -> str:
        stripped = value.lstrip()
        if stripped[:1] in ("{", "[") and len(value) < 1_000_000:
            try:
                parsed = json.loads(value)
            except (ValueError, RecursionError):
                parsed = None
            if isinstance(parsed, dict | list):
                if self._unchanged(parsed, depth + 1):
                    return value
                cleaned = self.structure(parsed, depth + 1)
                return value if cleaned == parsed else to_json(cleaned)
        return self.text(value, url=url)

    def _unchanged(self, value: Any, depth: int) -> bool:
        """Whether ``structure(value, depth)`` of parsed JSON gives back an equal value, found without
        building the copy (a data dict of plain names and numbers costs a walk, not a rebuild).
        False only sends the value the whole way: it never decides what is redacted."""
        if depth > _MAX_DEPTH:
            return False
        kind = type(value)
        if kind is str:
            return bool(self._string(value, depth, False) == value)
        if kind is dict:
            plain_keys = self._plain_keys
            for key, item in value.items():
                plain = plain_keys.get(key)
                if not (plain or (plain is None and self._is_plain_key(key))):
                    return False  # a secret name, or a URL's: its value may change
                item_kind = type(item)
                if item_kind is int or item_kind is float or item_kind is bool or item is None:
                    if depth + 1 > _MAX_DEPTH:
                        return False
                elif not self._unchanged(item, depth + 1):
                    return False
            return True
        if kind is list:
            return all(self._unchanged(item, depth + 1) for item in value)
        return kind is int or kind is float or kind is bool or value is None

    def attributes(self, attributes: Attributes | None) -> dict[str, Any] | None:
        """A scrubbed copy of ``attributes``, or ``None`` when nothing needed to change."""
        if not attributes or not self.enabled:
            return None
        out: dict[str, Any] | None = None
        plain_keys, strings, leaves_alone = self._plain_keys, self._string_cache, self.leaves_alone
        value: Any
        for key, value in attributes.items():
            # The common case first, without a call: a number, or a string already found clean,
            # under a name that is neither secret nor a URL's holds nothing to scrub.
            kind = type(value)
            if (
                kind is float
                or kind is int
                or kind is bool
                # a string found clean before (an equal one: JSON text is encoded afresh per record)
                or (
                    kind is str
                    and ((seen := strings.get(value)) is value or (seen is not None and seen == value))
                )
            ):
                plain = plain_keys.get(key)
                if plain or (plain is None and self._is_plain_key(key)):
                    continue
            elif kind is str and leaves_alone(value):
                # Not remembered: most such strings are ids seen once (correlation ids), which would
                # only push the repeating ones out of the cache.
                plain = plain_keys.get(key)
                if plain or (plain is None and self._is_plain_key(key)):
                    continue
            new = self.value(key, value)
            if new is not value and new != value:
                if out is None:
                    out = dict(attributes)
                out[key] = new
        return out

    def texts(self, key: str, texts: Iterable[str]) -> dict[str, str]:
        """Of distinct strings under ``key`` (a column of them), those :meth:`attributes` would
        change, each with what it becomes: the same tests, once per text — except that the value
        rules' trigger test (:meth:`leaves_alone`) runs once over the texts not found clean before,
        joined: a trigger in one text is one in the joined text, so none there means none in any
        (a trigger the joint makes only sends each text through its own test)."""
        changed: dict[str, str] = {}
        plain = self.is_plain_key(key)
        rest = list(texts)
        if plain:
            known = self._string_cache.get
            # A text never seen (the usual miss: a fresh id) is told by one identity test.
            rest = [t for t in rest if (seen := known(t)) is None or (seen is not t and seen != t)]
            if rest and self.leaves_all_alone(rest):
                return changed
        leaves_alone = self.leaves_alone
        for text in rest:
            if plain and leaves_alone(text):
                continue
            new = self.value(key, text)
            if new is not text and new != text:
                changed[text] = new
        return changed

    # -- records ----------------------------------------------------------------------------------
    def spans(self, batch: list[Any]) -> None:
        """Scrub finished spans in place (name, attributes, events, status description)."""
        self._each(batch, self._span)

    def log_records(self, batch: list[Any]) -> None:
        """Scrub log records and domain events in place (attributes and body)."""
        self._each(batch, self._log_record)

    def _each(self, batch: list[Any], scrub: Callable[[Any], None]) -> None:
        if not self.enabled:
            return
        for item in batch:
            if getattr(item, _MARK, False):
                continue  # another exporter's worker got here first
            try:
                scrub(item)
            except Exception:  # a hostile value fails only its own record: it leaves blank
                _log.exception("scrubbing a record failed; its attributes and body are withheld")
                _blank(item)
            # A record type with __slots__ is scrubbed again by the next worker. (No suppress():
            # it costs ~0.5 µs a record here.)
            try:  # noqa: SIM105
                setattr(item, _MARK, True)
            except AttributeError:
                pass

    def _span(self, span: Any) -> None:
        span._name = self._string(span._name, 0, url=True) if type(span._name) is str else span._name
        attributes = self.attributes(span._attributes)
        if attributes is not None:
            span._attributes = attributes
        if span._events:
            span._events = [self._event(event) for event in span._events]
        description = span._status.description
        if description:
            span._status = Status(span._status.status_code, self.text(description))

    def _event(self, event: Any) -> Any:
        """``event`` itself, or a copy with its attributes scrubbed: a copy, not a new ``Event``,
        keeps what its class carries besides (a received event's dropped-attribute count)."""
        attributes = self.attributes(event.attributes)
        if attributes is None:
            return event
        if type(event) is SpanEvent:
            return SpanEvent(event.name, attributes, event.timestamp)
        clone = copy.copy(event)
        clone._attributes = attributes
        return clone

    def _log_record(self, item: Any) -> None:
        record = getattr(item, "log_record", item)
        attributes = self.attributes(record.attributes)
        if attributes is not None:
            record.attributes = attributes
        if record.body is not None:
            record.body = self.structure(record.body)

    def metrics(self, data: MetricsData) -> MetricsData:
        """``data`` with every data point's attributes scrubbed (rebuilt only where they change)."""
        if not self.enabled:
            return data
        changed = False
        resource_metrics = []
        for rm in data.resource_metrics:
            scope_metrics = []
            for sm in rm.scope_metrics:
                metrics = []
                for metric in sm.metrics:
                    points: list[Any] = []
                    for point in metric.data.data_points:
                        attributes = self.attributes(point.attributes)
                        if attributes is not None:
                            changed = True
                            point = dataclasses.replace(point, attributes=attributes)
                        points.append(point)
                    data_ = dataclasses.replace(metric.data, data_points=points)  # type: ignore[arg-type]
                    metrics.append(dataclasses.replace(metric, data=data_))
                scope_metrics.append(dataclasses.replace(sm, metrics=metrics))
            resource_metrics.append(dataclasses.replace(rm, scope_metrics=scope_metrics))
        return dataclasses.replace(data, resource_metrics=resource_metrics) if changed else data


def _blank(item: Any) -> None:
    try:
        record = getattr(item, "log_record", None)
        if record is not None:
            record.attributes, record.body = {}, REDACTED
        else:
            item._attributes, item._events = {}, []
    except Exception:  # pragma: no cover - a record we cannot even blank
        _log.exception("a record could not be blanked")


class ScrubbingMetricExporter(MetricExporter):
    """A metric exporter that scrubs each collection before handing it to ``inner``."""

    def __init__(self, inner: MetricExporter, scrubber: Scrubber) -> None:
        super().__init__(
            preferred_temporality=inner._preferred_temporality,
            preferred_aggregation=inner._preferred_aggregation,
        )
        self.inner = inner
        self.scrubber = scrubber

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        return self.inner.export(self.scrubber.metrics(metrics_data), timeout_millis=timeout_millis, **kwargs)

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self.inner.force_flush(timeout_millis=timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.inner.shutdown(timeout_millis=timeout_millis, **kwargs)


#: Header names the OTel HTTP instrumentations themselves replace with ``[REDACTED]`` (regexes).
SANITIZE_HEADERS = (
    "authorization,proxy-authorization,cookie,set-cookie,x-api-key,x-auth-token,x-csrf-token,"
    ".*token.*,.*secret.*,.*passw.*,.*session.*,.*auth.*,.*api-key.*,.*apikey.*,.*signature.*"
)
_CAPTURE_HEADERS = "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_"
_SANITIZE_FIELDS = "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS"


def default_header_sanitizing(environ: MutableMapping[str, str] | None = None) -> None:
    """When a capture-headers variable (``…_SERVER_REQUEST``, ``…_CLIENT_RESPONSE`` …) is set, set the
    ``…_SANITIZE_FIELDS`` default too, so the instrumentations record ``[REDACTED]`` themselves."""
    environ = os.environ if environ is None else environ
    for suffix in ("SERVER_REQUEST", "SERVER_RESPONSE", "CLIENT_REQUEST", "CLIENT_RESPONSE"):
        if environ.get(_CAPTURE_HEADERS + suffix, "").strip():
            environ.setdefault(_SANITIZE_FIELDS, SANITIZE_HEADERS)
            return


DEFAULT = Scrubber()


class SecretLogFilter(logging.Filter):
    """Scrubs log records of ours and of the libraries whose errors quote our configuration (psycopg's
    ``invalid percent-encoded token: "<password>%zz"``): known secret values become ``***``, then
    the default value rules apply, to the message and to the formatted exception."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def redact(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return DEFAULT.text(text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
            cleaned = self.redact(message)
            if cleaned != message:
                record.msg, record.args = cleaned, None
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = self.redact(record.exc_text)
        except Exception:  # a filter must never lose the record
            record.msg, record.args = "[log message withheld: it could not be scrubbed]", None
        return True


LOG_FILTER = SecretLogFilter()

#: An absolute path (POSIX, or a Windows drive path) in an error message: only its last part is kept.
_ABSOLUTE_PATH = re.compile(
    r"""(?<![\w.:/\\…-])(?:/|[A-Za-z]:\\)(?:[^\s'"`,;()<>|]*[/\\])*([^\s'"`,;()<>|/\\]*)"""
)
#: … and one quoted (it may hold spaces).
_QUOTED_PATH = re.compile(r"""(['"])(?:/|[A-Za-z]:\\)[^'"]*?([^/\\'"]*)\1""")
_MAX_ERROR_CHARS = 300


def error_summary(error: BaseException | str) -> str:
    """An error as one short line fit to show beside the books: ``Type: message`` with secrets
    scrubbed (DSN passwords, URL userinfo, tokens: the log filter's rules and the DSN secrets it
    knows), absolute paths cut to their last part, at most 300 characters. Never raises.

    >>> error_summary(OSError("disk full at /srv/data/telemetry.db"))
    'OSError: disk full at …/telemetry.db'
    """
    try:
        if isinstance(error, BaseException):
            try:
                message = str(error)
            except Exception:  # an exception whose __str__ raises: its type says enough
                message = ""
            text = f"{type(error).__name__}: {message}" if message else type(error).__name__
        else:
            text = str(error)
        text = " ".join(text.split())
        text = LOG_FILTER.redact(text)
        text = _QUOTED_PATH.sub(lambda m: f"{m.group(1)}…/{m.group(2)}{m.group(1)}", text)
        text = _ABSOLUTE_PATH.sub(lambda m: "…/" + m.group(1) if m.group(1) else "…/", text)
    except Exception:
        text = type(error).__name__ if isinstance(error, BaseException) else "error"
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 1] + "…"


_FILTERED_LOGGERS = ("otel_tele", "psycopg", "psycopg.pool")


def protect_logs(secrets: Iterable[str] = ()) -> None:
    """Never let ``secrets`` (or anything the value rules find) reach a log line of ours or of the
    database driver's; idempotent."""
    LOG_FILTER.secrets.update(secret for secret in secrets if secret)
    for name in _FILTERED_LOGGERS:
        logger = logging.getLogger(name)
        if LOG_FILTER not in logger.filters:
            logger.addFilter(LOG_FILTER)
