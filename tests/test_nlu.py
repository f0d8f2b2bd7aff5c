"""The NLU stage: each final transcript understood once (intent, knowledge hits), its
vector embedded while the turn is decided when the ASR's speculative words at the pause
are the words the turn ends on. Real MiniLM, intents and knowledge base; no audio."""

from __future__ import annotations

import asyncio

from pipecat.frames.frames import EndFrame
from switchboard.pipeline.context import CallContext
from switchboard.pipeline.events import TranscriptFinal
from switchboard.pipeline.frames import EventFrame
from switchboard.pipeline.stages.nlu import NLUStage
from switchboard.pipeline.turn import turn_text

from tests.helpers import generous_budgets, run_within, started, until


class Counting:
    """The bundle's embedder, keeping the sentences it encodes."""

    def __init__(self, embedder):
        self._embedder = embedder
        self.texts: list[str] = []

    def encode(self, texts):
        self.texts.extend(texts)
        return self._embedder.encode(texts)


class Understood:
    """An NLU stage over the bundle's models, fed final transcripts and pause words."""

    def __init__(self, bundle, settings):
        self.ctx = CallContext("nlu-1", settings)
        self.embedder = Counting(bundle.embedder())
        _articles, index = bundle.knowledge()
        self.stage = NLUStage(self.ctx, "caller", index, bundle.intents(), self.embedder,
                              bundle.executor("nlu"))
        self.pauses = turn_text(self.ctx, "caller")
        self.utterance = 0

    def events(self, kind: str) -> list:
        return [e for e in self.ctx.bus.history if e.kind == kind]

    async def say(self, task, text: str) -> None:
        """A final transcript, as the ASR emits it; then until its intent is out."""
        self.utterance += 1
        before = len(self.events("intent"))
        final = TranscriptFinal(call_id="nlu-1", leg="caller", t_audio=self.utterance,
                                utterance=self.utterance, text=text)
        await task.queue_frame(EventFrame(event=final))
        await until(lambda: len(self.events("intent")) > before)

    def run(self, script) -> None:
        async def main():
            task, running = await started([self.stage])
            try:
                await script(task)
            finally:
                await task.queue_frame(EndFrame())
                await running
                await self.stage.close()

        run_within(main(), 60)


WORDS = "I want to return the jacket I bought last week"


def test_the_words_of_the_pause_are_embedded_before_the_turn_ends(bundle, settings_factory):
    """The speculative transcript of each pause is embedded at once; the final with the
    last pause's words reuses that vector (encoded once, not twice), understood exactly
    as without it, the embedding's cost still on the turn's steps. A final with other
    words than its pause's embeds its own."""
    plain = Understood(bundle, generous_budgets(settings_factory()))
    plain.run(lambda task: plain.say(task, WORDS))

    heard = Understood(bundle, generous_budgets(settings_factory()))

    async def script(task):
        heard.pauses.offer(1, 0.5, "I want to return the jacket")  # the turn goes on
        await until(lambda: len(heard.embedder.texts) == 1, 10)
        heard.pauses.offer(1, 0.9, WORDS)  # the pause the turn ends at
        await until(lambda: len(heard.embedder.texts) == 2, 10)
        await heard.say(task, WORDS)
        heard.pauses.offer(2, 1.5, "what's your refund policy")
        await until(lambda: len(heard.embedder.texts) == 3, 10)
        await heard.say(task, "what is your refund policy")

    heard.run(script)
    assert plain.embedder.texts == [WORDS]
    assert heard.embedder.texts == ["I want to return the jacket", WORDS,
                                    "what's your refund policy", "what is your refund policy"]
    (expected,) = plain.events("intent")
    first = heard.events("intent")[0]
    assert (first.intent, first.text, first.candidates) == (
        expected.intent, WORDS, expected.candidates)
    assert abs(first.confidence - expected.confidence) < 1e-6
    embedding = [e for e in heard.events("stage_latency") if e.step == "embedding"]
    assert len(embedding) == 2 and all(e.latency_ms > 0 for e in embedding)


def test_words_the_bot_cut_in_on_are_part_of_the_prepared_turn(bundle, settings_factory):
    """After a withdrawn reply the final joins the caller's earlier words; the pause's
    words are prepared joined the same way, so the vector still serves."""
    heard = Understood(bundle, generous_budgets(settings_factory()))

    async def script(task):
        heard.ctx.resumes = "I need some help with my account"
        heard.pauses.offer(1, 0.9, "I forgot my username")
        await until(lambda: len(heard.embedder.texts) == 1, 10)
        await heard.say(task, "I forgot my username")

    heard.run(script)
    joined = "I need some help with my account I forgot my username"
    assert heard.embedder.texts == [joined]
    assert heard.events("intent")[0].text == joined and heard.ctx.resumes == ""


def test_preparing_at_the_pause_can_be_turned_off(bundle, settings_factory):
    """``nlu.prepare_at_pause = false``: nothing is embedded until the final."""
    heard = Understood(bundle, generous_budgets(settings_factory(
        nlu={"prepare_at_pause": False})))

    async def script(task):
        heard.pauses.offer(1, 0.9, WORDS)
        await asyncio.sleep(0.5)  # time enough to embed (~10 ms), were it on
        assert heard.embedder.texts == []
        await heard.say(task, WORDS)

    heard.run(script)
    assert heard.embedder.texts == [WORDS]


def test_a_failing_model_is_reported_once_per_turn_not_per_pause(bundle, settings_factory):
    """The NLU fails on its rung: the pause's embedding fails quietly, the final's failure
    is the one error reported, and the turn still gets its (out-of-scope) intent."""
    settings = generous_budgets(settings_factory())
    settings.faults.fail_rungs = ["nlu:hybrid"]
    heard = Understood(bundle, settings)

    async def script(task):
        heard.pauses.offer(1, 0.9, WORDS)
        await asyncio.sleep(0.3)
        await heard.say(task, WORDS)

    heard.run(script)
    assert len(heard.events("stage_error")) == 1
    assert heard.events("intent")[0].intent == "out_of_scope"
