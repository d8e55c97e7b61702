"""The scrubber's pre-checks only skip work: ``Scrubber.text`` gives what every value rule applied
unconditionally gives, for ids that are runs of digits (no rule but the card rule is tried) as for
text holding secrets."""

from __future__ import annotations

import random

from otel_tele._scrub import (
    _ANY_TRIGGER,
    _CARD,
    _VALUE_RULES,
    Scrubber,
    _card,
    _joined_may_trigger,
    _may_trigger,
)

SAMPLES = [
    "cmd-000000000123",
    "req-2024-0000-1111-2222",
    "4111 1111 1111 1111",
    "order 4111111111111111 paid",
    "id 378282246310005 and password=hunter2",
    "postgres://app:hunter2@db:5432/x 5555555555554444",
    "Bearer abcdefghijklmnop 1234567890123",
    "ANPA1234567890ABCDEF 000011112222",
    "AKIAABCDEFGHIJKLMNOP",
    "eyJhbGciOi.eyJzdWIiOi.sig 0000 1111 2222",
    "sk_live_abcdefghijklmnopqrst",
    "plain text, nothing here",
    "",
    "12345678901234567890123",
]


def _every_rule(scrubber: Scrubber, value: str) -> str:
    for pattern, replacement in _VALUE_RULES:
        value = pattern.sub(replacement, value)
    value = scrubber._pairs(value)
    return _CARD.sub(_card, value)


def test_pre_checks_change_nothing_but_the_work() -> None:
    scrubber = Scrubber()
    for value in SAMPLES:
        assert scrubber.text(value) == _every_rule(scrubber, value), value
    assert scrubber.text("cmd-000000000123") == "cmd-000000000123"
    assert "4111" not in scrubber.text("order 4111111111111111 paid")
    assert "ANPA1234567890ABCDEF" not in scrubber.text("ANPA1234567890ABCDEF 000011112222")


class _EveryPath(Scrubber):
    """The scrubber without its shortcuts for JSON text that needs no change."""

    def _unchanged(self, value: object, depth: int) -> bool:
        return False


ATTRIBUTE_SAMPLES = [
    {"robot.data_json": '{"id":3,"angle":48.0,"speed":30}', "robot.correlation_id": "cmd-000000000123"},
    {"robot.data_json": '{"id":3,"password":"x"}', "k": "cmd-4111111111111111"},
    {"robot.data_json": ' {"token":1}', "robot.correlation_id": "a=b"},
    {"robot.data_json": '[{"a":{"b":["postgres://u:p@h/db", 1.5, null, true]}}]'},
    {"robot.data_json": '{"url.full":"https://x/aaaaaaaaaaaaaaaaaaaaaa1234"}', "x": "{not json"},
    {"robot.data_json": "[" * 40 + "1" + "]" * 40, "y": '["plain", {"nested": "{\\"apikey\\":\\"k\\"}"}]'},
    {"robot.data_json": '{"a":NaN,"b":Infinity,"c":"Bearer abcdefghijklmnop"}', "z": ""},
    {"secret": "plain", "url.full": "https://h/p/aaaaaaaaaaaaaaaaaaaaaa1234", "n": 5, "f": 1.5},
]


def test_attribute_shortcuts_change_nothing_but_the_work() -> None:
    """``attributes`` (strings without a trigger, JSON text walked instead of rebuilt, clean strings
    remembered) gives what every value passed through every rule gives, first time and repeated."""
    scrubber, reference = Scrubber(), _EveryPath()
    for attributes in ATTRIBUTE_SAMPLES * 2:
        expected = {key: reference.value(key, value) for key, value in attributes.items()}
        got = scrubber.attributes(attributes)
        assert (got if got is not None else attributes) == expected, attributes
    assert scrubber.attributes(ATTRIBUTE_SAMPLES[0]) is None  # nothing to scrub: no copy
    extra = Scrubber(extra_patterns=[r"cmd-\d+"])
    assert extra.attributes({"robot.correlation_id": "cmd-000000000123"}) == {
        "robot.correlation_id": "[REDACTED]"
    }


def test_substring_pre_check_is_the_trigger_regex() -> None:
    """``_may_trigger`` decides exactly what ``_ANY_TRIGGER`` decides: on every trigger's pieces
    shuffled at random, on the letters case-insensitive matching folds beyond ASCII, and on text
    with none of them."""
    rng, scrubber = random.Random(15), Scrubber()
    pieces = [
        "=", ":", "@", "-----BEGIN", "-----", "eyJ", "ey", "AKIA", "ASIA", "AGPA", "AIDA", "AROA",
        "ANPA", "ANVA", "AIPA", "AIza", "AIz", "A", "ghp_", "gho_", "ghx_", "github_pat", "github",
        "xox", "xo", "_live_", "_test_", "_live", "bearer", "BASIC", "Digest", "toKen", "negotiate",
        "apikey", "apiKEY", "to\u212aen", "ba\u017fic", "d\u0131gest", " ", "\t", "\u00a0", "\n",
        "2", "4", "7", "0", "-", "1111", "555555", "x", "é", "req", "id",
    ]  # fmt: skip
    for _ in range(20_000):
        value = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        assert _may_trigger(value) == (_ANY_TRIGGER.search(value) is not None), repr(value)
        if scrubber.leaves_alone(value):  # the shortcut the row path takes for log bodies
            assert _every_rule(scrubber, value) == value, repr(value)
    for value in [*SAMPLES, "request 12 record 345 handled", "Token\u00a0abc", "ba\u017fic x", "4" * 13]:
        assert _may_trigger(value) == (_ANY_TRIGGER.search(value) is not None), repr(value)
    assert not _may_trigger("request 12 record 345 handled")
    assert _may_trigger("ba\u017fic credentials") and _may_trigger("2222333344445")
    assert not scrubber.leaves_alone(' {"a": 1}') and not scrubber.leaves_alone("password=x")
    assert not Scrubber(extra_patterns=[r"cmd-\d+"]).leaves_alone("cmd-1")


def test_a_block_of_values_is_left_alone_only_when_each_value_is() -> None:
    """``leaves_all_alone`` (the row path's check of a request's log bodies at once) never says a
    block is clean when one value of it is not, wherever the value sits and whatever its
    neighbours; and a block of clean values, joined, is seen as clean (the shortcut is taken)."""
    rng, scrubber = random.Random(16), Scrubber()
    pieces = [
        "=", ":", "@", "eyJ", "AKIA", "AIza", "ghp_", "xox", "_live_", "bearer", "Bearer", " ", "\t",
        "\n", "2", "4", "1111", "5555", "-", "x", "é", "req", "{", "[", "token", "\u212a",
    ]  # fmt: skip
    for _ in range(5_000):
        values = [
            "".join(rng.choice(pieces) for _ in range(rng.randint(0, 6))) for _ in range(rng.randint(1, 5))
        ]
        if scrubber.leaves_all_alone(values):
            assert all(scrubber.leaves_alone(value) for value in values), values
    clean = [f"request {i} record {i * 7} handled" for i in range(500)]
    assert scrubber.leaves_all_alone(clean)
    for dirty in ("password=x", "card 4111 1111 1111 1111", ' {"a": 1}', "\tindented", "Bearer abcdefghijk"):
        for at in (0, 250, 500):
            assert not scrubber.leaves_all_alone([*clean[:at], dirty, *clean[at:]]), (dirty, at)
    # Digits of neighbours joined never hide nor fake a card number: the NUL between them breaks it.
    assert scrubber.leaves_all_alone(["id 411111", "1111111111 x"])
    assert not Scrubber(extra_patterns=[r"cmd-\d+"]).leaves_all_alone(["plain"])


def test_a_column_of_texts_is_scrubbed_as_each_text_alone() -> None:
    """``Scrubber.texts`` (the row path: the trigger test run once over a column's texts joined)
    changes exactly the texts ``attributes`` changes, into the same text: triggers inside one text,
    none anywhere, texts that start as JSON or with a space, a joint inside a text, secret keys."""
    rng = random.Random(14)
    pieces = [*SAMPLES, "cmd-000000000124", ' {"token":1}', "[1]", "\x00{", "\t x", "pass", "word=1", "é"]
    for key in ("robot.correlation_id", "robot.data_json", "password", "url.full"):
        for _ in range(300):
            texts = list(dict.fromkeys(rng.choice(pieces) for _ in range(rng.randint(0, 6))))
            scrubber, reference = Scrubber(), Scrubber()
            expected = {}
            for text in texts:
                got = reference.attributes({key: text})
                if got is not None and got[key] != text:
                    expected[text] = got[key]
            assert scrubber.texts(key, texts) == expected, (key, texts)
            if any(map(_may_trigger, texts)):  # no text's trigger is missed by the joined test
                assert _joined_may_trigger("\x00".join(texts)), texts
    clean = [f"cmd-{i:012d}" for i in range(100)]
    assert not _joined_may_trigger("\x00".join(clean))  # a dozen digits each: the card rule skipped
    assert _joined_may_trigger("\x00".join([*clean, "x 4111111111111111"]))
    assert Scrubber().texts("robot.correlation_id", clean) == {}
    assert Scrubber().texts("robot.correlation_id", [*clean, "a password=x"]) == {
        "a password=x": "a password=[REDACTED]"
    }
