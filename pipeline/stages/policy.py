"""Policy stage: decides the bot's reply to each understood caller utterance."""

from __future__ import annotations

from pipecat.processors.frame_processor import FrameDirection
from switchboard.models.intent import OUT_OF_SCOPE
from switchboard.pipeline.context import CallContext
from switchboard.pipeline.events import BotReply, IntentDetected
from switchboard.pipeline.frames import EventFrame
from switchboard.pipeline.policy import compose
from switchboard.pipeline.stages.base import Stage


class PolicyStage(Stage):
    """Bot mode: answers every caller intent from the knowledge base."""

    stage_name = "policy"

    def __init__(self, ctx: CallContext, leg: str, articles):
        super().__init__(ctx, leg)
        self._articles = {a.id: a for a in articles or []}
        self._replies = 0

    async def process_frame(self, frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)
        if (isinstance(frame, EventFrame) and isinstance(frame.event, IntentDetected)
                and frame.event.leg == self.leg == "caller"
                and self.ctx.settings.policy.mode == "bot"):
            await self._reply(frame.event)

    async def _reply(self, intent: IntentDetected) -> None:
        article = None if intent.intent == OUT_OF_SCOPE else self._articles.get(intent.intent)
        words = len(intent.text.split())
        if article is None and words < self.ctx.settings.policy.min_words_to_clarify:
            return
        reply = compose(article)
        self._replies += 1
        await self.emit(BotReply(
            call_id=self.ctx.call_id, leg=self.leg, t_audio=intent.t_audio,
            latency_ms=self.clock.latency_ms(intent.t_audio), utterance=intent.utterance,
            reply_id=self._replies, text=reply.text, intent=reply.intent,
        ))
