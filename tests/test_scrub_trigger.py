"""The scrubber's pre-checks only skip work: ``Scrubber.text`` gives what every value rule applied
unconditionally gives, for ids that are runs of digits (no rule but the card rule is tried) as for
text holding secrets."""

from __future__ import annotations

from otel_tele._scrub import _CARD, _VALUE_RULES, Scrubber, _card

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
