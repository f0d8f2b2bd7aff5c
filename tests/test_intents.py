import pytest
from switchboard.models.intent import OUT_OF_SCOPE
from switchboard.pipeline.intents import (
    BUNDLED,
    IntentDetector,
    IntentExamplesError,
    load_examples,
)


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_later_files_add_phrases_and_intents(tmp_path):
    base = _write(tmp_path, "a.toml", '[refund]\nexamples = ["I want my money back"]\n'
                                      '[_note]\ntext = "ignored"\n')
    site = _write(tmp_path, "b.toml", '[refund]\nexamples = ["refund please", " "]\n'
                                      '[loyalty]\nexamples = ["how many points do I have"]\n')
    examples = load_examples([base, site])
    assert examples == {"refund": ["I want my money back", "refund please"],
                        "loyalty": ["how many points do I have"]}


@pytest.mark.parametrize("text, message", [
    ("[refund\nexamples = []", "not valid TOML"),
    ('[refund]\nphrases = ["x"]\n[other]\nexamples = ["y"]', "needs examples"),
    ('[refund]\nexamples = ["x"]', "at least two intents"),
])
def test_malformed_files_are_clear_errors(tmp_path, text, message):
    with pytest.raises(IntentExamplesError, match=message):
        load_examples([_write(tmp_path, "bad.toml", text)])


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(IntentExamplesError, match="not found"):
        load_examples([tmp_path / "nope.toml"])


def test_operator_adds_an_intent_without_a_training_step(tmp_path, bundle):
    site = _write(tmp_path, "site.toml", """
[loyalty_points]
examples = [
  "how many loyalty points do I have",
  "can I use my reward points on this order",
  "my points balance looks wrong",
  "do my loyalty points expire",
  "I didn't get points for my last purchase",
]
""")
    detector = IntentDetector(load_examples([BUNDLED, site]), bundle.embedder(),
                              oos_threshold=0.0)
    text = "I want to check my reward points balance"
    assert detector.detect(text, bundle.embedder().encode([text])[0]).intent == "loyalty_points"
    assert detector.detect(text).intent == "loyalty_points"  # the n-gram classifier agrees


# Written for this test in words the example phrases do not use ("secret word", "voucher",
# "swallows me"): what a caller who never read abcd.toml says. Some are hard on purpose,
# and some sit between two neighbouring intents (money not back after a return: refund
# status or a billing mistake?).
CALLER_PHRASINGS = [  # (intent, what the caller says)
    ("recover_password",
     "so every time I try to sign in the site tells me the secret word I typed is wrong "
     "and I honestly can't recall it"),
    ("recover_password",
     "could you send me one of those links to make a fresh login code, mine's gone out of my head"),
    ("manage_change_address",
     "we relocated across town last month and the account profile still lists the old house"),
    ("manage_change_address",
     "please put my new street and zip code on file, I'm not at the old place anymore"),
    ("promo_code_invalid",
     "that twenty percent off thing from the newsletter gets refused when I check out"),
    ("promo_code_invalid",
     "checkout keeps telling me the voucher I typed in doesn't exist"),
    ("refund_status",
     "I sent the sweater back two weeks ago and still haven't seen the money on my card"),
    ("refund_status",
     "any news on getting my money returned for that order I sent back"),
    ("return_size",
     "these pants are way too tight around the waist, I want to swap them for a larger one"),
    ("return_size",
     "the coat I got swallows me, it's two sizes too roomy, how do I ship it back"),
    ("manage_cancel",
     "oops, I hit the buy button twice and now there are two identical jackets coming"),
    ("reset_2fa",
     "the verification text with the six digit number never arrives on my new phone"),
    ("manage_upgrade",
     "I'd pay extra if the parcel could get here by tomorrow morning instead of next week"),
    ("bad_price_competitor",
     "the shop down the road has this exact item for fifteen bucks less, will you match it"),
    ("out_of_stock_one_item",
     "that one particular blouse has said unavailable for weeks, when are you restocking it"),
    ("slow_speed",
     "your web pages take ages to open, I click and then nothing happens for a minute"),
    ("status_mystery_fee",
     "my receipt shows some charge I never agreed to on top of the item price"),
    ("manage_pay_bill",
     "how do I settle the amount due on my yearly membership, I want to pay it now"),
    ("recover_username",
     "I can't remember the name I log in with, just the email I used"),
    ("manage_change_phone",
     "I switched to a different mobile carrier and the contact number you have is no good now"),
]
OFF_TOPIC = ["what's the weather going to be like in Paris tomorrow",
       "can you recommend a good recipe for banana bread",
       "who won the football game last night"]


def test_bundled_intents_on_caller_phrasings(bundle):
    """Measured 2026-11-30: 13 of 20 (0.65) right, the off-topic requests all
    out_of_scope. The floor sits a point under (12 of 20): a change to the phrases or the
    classifier that loses two of these fails."""
    detector = bundle.intents()
    embedder = bundle.embedder()
    right = [detector.detect(t, embedder.encode([t])[0]).intent == intent
             for intent, t in CALLER_PHRASINGS]
    assert sum(right) >= 12, f"{sum(right)} of {len(right)}"
    for text in OFF_TOPIC:
        assert detector.detect(text, embedder.encode([text])[0]).intent == OUT_OF_SCOPE, text
