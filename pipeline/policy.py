"""Reply policy (bot mode): what the bot says back for an understood utterance.

The first sentence is a short acknowledgement, so the caller hears a reply as soon as
possible (TTS renders sentence by sentence); the second asks for what the flow's first
required agent action needs, phrased for the caller.
"""

from __future__ import annotations

from dataclasses import dataclass

from switchboard.pipeline.knowledge import Article

ACKNOWLEDGEMENT = "Sure, I can help with that."
NOT_UNDERSTOOD = (
    "Sorry, I didn't quite catch that. Could you tell me a little more about what you need?"
)

#: What the bot says often enough to render once per process (ModelBundle.warm_up).
FIXED_PHRASES = (ACKNOWLEDGEMENT, NOT_UNDERSTOOD)

# ABCD's agent actions (ontology.json "actions"), as the question the caller must answer.
_ASK_FOR = {
    "pull-up-account": "Could you give me your full name or account ID?",
    "verify-identity": "First I need to verify your identity: your full name, zip code, "
                       "phone number or email address.",
    "validate-purchase": "Could you give me your username, email address and order ID?",
    "enter-details": "Could you give me your username or email address?",
    "record-reason": "Could you tell me a little more about the reason?",
    "ask-the-oracle": "Let me check that on our system for you.",
    "shipping-status": "Could you tell me which shipping option you chose?",
    "membership": "Could you tell me your membership level?",
    "search-faq": "Let me look that up in our FAQ for you.",
    "try-again": "Could you please try that again and tell me what you see?",
    "log-out-in": "Could you try logging out and back in for me?",
    "subscription-status": "Let me check your subscription status.",
    "promo-code": "Could you read me the promo code?",
}


@dataclass(frozen=True)
class Reply:
    """What to say, and the flow it serves (empty when not understood)."""

    text: str
    intent: str


def compose(article: Article | None) -> Reply:
    """The bot's reply for a recognised flow, or the clarifying question for none."""
    if article is None:
        return Reply(NOT_UNDERSTOOD, "")
    ask = next((_ASK_FOR[a] for a in article.actions if a in _ASK_FOR), None)
    topic = f"Let's sort out your {article.title.lower().removesuffix(' faq')} request."
    text = " ".join(s for s in (ACKNOWLEDGEMENT, topic, ask) if s)
    return Reply(text, article.id)
