"""Long digit strings (cards, accounts) are masked in text, in what the call store writes,
and in log records; short numbers and identifiers are left alone."""

from __future__ import annotations

import io
import logging

import pytest
from switchboard.pipeline.events import BotReply, HandoffRequested, TranscriptFinal
from switchboard.pipeline.redact import (
    MASK,
    RedactingFilter,
    install_log_filter,
    redact,
    redact_value,
)
from switchboard.pipeline.store import CallStore

from switchboard.config import PrivacyOptions, StoreOptions

CARD = "4111 1111 1111 1111"


@pytest.mark.parametrize("said", [
    f"my card is {CARD} thanks",
    "my card is 4111-1111-1111-1111 thanks",
    "my card is 4111111111111111 thanks",
    "my card is 4, 1, 1, 1, 1, 1 thanks",
    "my card is four one one one one one one one thanks",
    "my card is Four one one one, one one one one thanks",
    "my card is oh double five two three nine thanks",
    "my card is 4111 one one one one one thanks",
])
def test_a_long_digit_run_is_masked_however_it_is_written(said):
    masked = redact(said)
    assert masked == f"my card is {MASK} thanks", masked


@pytest.mark.parametrize("said", [
    "it cost 25 dollars in 2024",
    "my zip is 94110",
    "one of the two orders, the second one",
    "I called at 10:20 and again at 11:45",
    "one two three four five",  # five digits: under min_digits
])
def test_short_numbers_and_ordinary_words_stay(said):
    assert redact(said) == said


def test_min_digits_is_the_threshold():
    assert redact("pin 12345", min_digits=5) == f"pin {MASK}"
    assert redact("pin 12345", min_digits=6) == "pin 12345"
    assert redact("pin 123456", min_digits=0) == "pin 123456"  # 0: off


def test_values_are_masked_but_identifiers_kept():
    event = BotReply(call_id="a12345678bcd", leg="caller", t_audio=1.0, reply_id=1,
                     text=f"I have {CARD}. Is that right?", slots={"account_id": "AC98765432"})
    masked = redact_value(event.to_dict())
    assert masked["call_id"] == "a12345678bcd"  # a call id may hold six digits in a row
    assert masked["text"] == f"I have {MASK}. Is that right?"
    assert masked["slots"] == {"account_id": f"AC{MASK}"}


def _store(tmp_path, redact_digits: bool) -> CallStore:
    options = StoreOptions(url=f"sqlite:///{tmp_path / 'calls.db'}", commit_interval_s=0.01)
    return CallStore.from_options(options, PrivacyOptions(redact_digits=redact_digits))


def _record_a_call(store: CallStore) -> dict:
    call_id = "c0ffee123456"
    store.begin(call_id, "webrtc:test")
    said = f"my card number is {CARD}"
    store.append(TranscriptFinal(call_id=call_id, leg="caller", t_audio=3.0, text=said,
                                 t_start=1.0))
    store.append(BotReply(call_id=call_id, leg="caller", t_audio=4.0, reply_id=1,
                          text="I have four one one one one one one one. Right?",
                          act="confirm", slots={"card": CARD}))
    store.append(HandoffRequested(call_id=call_id, leg="caller", t_audio=5.0, rule="dtmf_0",
                                  context={"transcript": [{"leg": "caller", "text": said}]}))
    store.end(call_id, "completed", summary={"context": {"transcript": [said]},
                                             "after_call": {"text": f"card {CARD}"}})
    store.flush()
    record = store.get_call(call_id)
    record["events"] = store.events(call_id)
    return record


def test_the_store_writes_no_card_number(tmp_path):
    store = _store(tmp_path, redact_digits=True)
    try:
        record = _record_a_call(store)
    finally:
        store.close()
    assert record["call_id"] == "c0ffee123456"
    text = repr(record)
    assert "4111" not in text and "one one one one" not in text, text
    assert [t["text"] for t in record["transcript"]] == [
        f"my card number is {MASK}", f"I have {MASK}. Right?"]
    assert record["handoffs"][0]["context"]["transcript"][0]["text"].endswith(MASK)
    assert record["summary"]["after_call"]["text"] == f"card {MASK}"
    # What else was said is kept word for word.
    assert record["events"][1]["act"] == "confirm"


def test_redaction_can_be_turned_off(tmp_path):
    store = _store(tmp_path, redact_digits=False)
    try:
        record = _record_a_call(store)
    finally:
        store.close()
    assert record["transcript"][0]["text"] == f"my card number is {CARD}"


def _logged(handler_filter_installed: bool) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    uninstall = install_log_filter(6) if handler_filter_installed else (lambda: None)
    try:
        log = logging.getLogger("switchboard.test_redact")
        log.warning("caller said %s", f"card {CARD}")
        try:
            raise ValueError(f"bad account 12345678 in {CARD}")
        except ValueError:
            log.exception("action failed for %s", "AC98765432")
    finally:
        uninstall()
        root.removeHandler(handler)
    return stream.getvalue()


def test_the_log_filter_masks_messages_arguments_and_tracebacks():
    out = _logged(True)
    assert "caller said card [redacted]" in out, out
    assert "action failed for AC[redacted]" in out, out
    assert "ValueError: bad account [redacted] in [redacted]" in out, out
    assert "4111" not in out and "12345678" not in out, out
    # The positive control: without the filter the number is there.
    assert CARD in _logged(False)


def test_the_filter_alone_keeps_every_record():
    stack = f"Stack (most recent call last):\n  File \"x.py\", line 1, in f\n    pay('{CARD}')"
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "n=%d card %s", (5, CARD), None,
                               sinfo=stack)
    assert RedactingFilter(6).filter(record) is True
    assert record.getMessage() == f"n=5 card {MASK}"
    assert record.stack_info.endswith(f"pay('{MASK}')")


def test_the_log_filter_masks_what_model_libraries_log_through_loguru():
    """pipecat logs through loguru, not logging: its messages are masked too."""
    from loguru import logger

    stream = io.StringIO()
    sink = logger.add(stream, format="{message}")
    uninstall = install_log_filter(6)
    try:
        logger.warning(f"transcript: my card is {CARD}")
    finally:
        uninstall()
        logger.remove(sink)
    assert stream.getvalue().strip() == f"transcript: my card is {MASK}"


def _board_row(redact_digits: bool) -> dict:
    """A supervisor board row of a call whose risk alert quotes a card number."""
    from types import SimpleNamespace

    from switchboard.pipeline.bus import EventBus
    from switchboard.pipeline.events import RiskAlert
    from switchboard.telephony.call import CallState

    from switchboard.board import Board
    from switchboard.config import Settings

    settings = Settings()
    settings.privacy.redact_digits = redact_digits
    bus = EventBus()
    call = SimpleNamespace(call_id="c1", bus=bus, state=CallState.AGENT, channel="webrtc",
                           started_at=0.0)
    record = SimpleNamespace(call=call, number=1, agent="alice")
    center = SimpleNamespace(calls={"c1": record})
    board = Board(center, settings)
    board.rows()  # the board follows the call from here
    bus.publish(RiskAlert(call_id="c1", leg="caller", t_audio=1.0, level=9.0,
                          reason="caller says: cancel card 4111 1111 1111 1111",
                          detail=f"I want to cancel {CARD} now"))
    return board.rows()["c1"]


def test_the_supervisor_board_masks_card_numbers_unless_told_not_to():
    alert = _board_row(redact_digits=True)["alerts"][0]
    assert alert["detail"] == f"I want to cancel {MASK} now", alert
    assert alert["reason"] == f"caller says: cancel card {MASK}", alert
    assert _board_row(redact_digits=False)["alerts"][0]["detail"] == f"I want to cancel {CARD} now"
