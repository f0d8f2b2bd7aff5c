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


def test_bundled_intents_on_caller_phrasings(bundle):
    detector = bundle.intents()
    embedder = bundle.embedder()
    cases = {
        "hi, I forgot my password and I can't get into my account": "recover_password",
        "I'd like to change the shipping address on my order": "manage",  # shipping_issue
        "the promo code you sent me says it's invalid": "promo_code_invalid",
    }
    for text, intent in cases.items():
        assert detector.detect(text, embedder.encode([text])[0]).intent == intent, text
    weather = "what's the weather going to be like in Paris tomorrow"
    assert detector.detect(weather, embedder.encode([weather])[0]).intent == OUT_OF_SCOPE
