from switchboard.pipeline.knowledge import Article
from switchboard.pipeline.policy import ACKNOWLEDGEMENT, NOT_UNDERSTOOD, compose


def test_reply_starts_short_and_asks_for_the_first_action():
    a = Article("recover_password", "account_access", "Recover Password", "", (), (
        "pull-up-account", "enter-details"))
    reply = compose(a)
    assert reply.text.startswith(ACKNOWLEDGEMENT) and "full name or account ID" in reply.text
    assert reply.intent == "recover_password"


def test_not_understood():
    assert compose(None).text == NOT_UNDERSTOOD
