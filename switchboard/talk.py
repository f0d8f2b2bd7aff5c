"""``switchboard talk``: a call with the bot from this computer's microphone and speakers.

The quickest way to hear what the system does: no SIP phone, no browser. The desk's
sound devices are the caller's edge (telephony/sound_device.py); the call is an ordinary
call of the call center (greeting, answers, the record in the call store), with what the
bot heard and what it said printed as the call goes. Ctrl-C hangs up.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

from switchboard.callcenter import CallCenter
from switchboard.config import Settings
from switchboard.pipeline.events import BotReply, Event, TranscriptFinal
from switchboard.telephony.sound_device import SoundDeviceEdge


async def talk(settings: Settings, bundle, devices: tuple, seconds: float | None = None,
               say: Callable[[str], None] = print, store=None) -> str:
    """Run one desk call until Ctrl-C, the microphone's end or ``seconds``; its end reason."""
    pa, mic, speakers = devices
    center = CallCenter(settings, bundle, store=store)
    await center.prewarm()
    edge = SoundDeviceEdge(pa, mic, speakers)
    call = center.new_call("desk")

    def show(event: Event) -> None:
        if isinstance(event, TranscriptFinal) and event.leg == "caller" and event.text:
            say(f"you: {event.text}")
        elif isinstance(event, BotReply) and event.text:
            say(f"bot: {event.text}")

    call.bus.subscribe(show)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, call.end, "hangup")
    timer = loop.call_later(seconds, call.end, "time limit") if seconds else None
    try:
        edge.start()
        say("Talking to the bot: speak after its greeting. Ctrl-C hangs up.")
        await center.run_call(call, edge)
    finally:
        if timer is not None:
            timer.cancel()
        loop.remove_signal_handler(signal.SIGINT)
        await edge.close(call.end_reason or "ended")
    return call.end_reason or "ended"
