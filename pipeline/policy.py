"""What the bot says, rendered once per process: the dialogue's fixed phrases.

The replies themselves come from the call's dialogue (pipeline/dialogue.py, run by the
policy stage, pipeline/stages/policy.py). Every reply fragment with no value in it is
rendered into the bundle's phrase cache at start-up (``ModelBundle.warm_up``, else the
first call's ``CallGraph.prewarm``), so replies made of them start at once.
"""

from __future__ import annotations

from switchboard.pipeline.dialogue import FIXED_PHRASES as _DIALOGUE_PHRASES
from switchboard.pipeline.dialogue import GREETINGS

#: The dialogue's usual first acknowledgement (one of its "ack" phrases).
ACKNOWLEDGEMENT = "Sure, I can help with that."

#: What the bot says often enough to render once per process (ModelBundle.warm_up).
FIXED_PHRASES: tuple[str, ...] = _DIALOGUE_PHRASES

__all__ = ["ACKNOWLEDGEMENT", "FIXED_PHRASES", "GREETINGS"]
