"""End of turn: the words' rules, the decision, and the VAD stage on real recordings."""

import asyncio

import pytest
from pipecat.processors.frame_processor import FrameDirection
from switchboard.pipeline.context import CallContext
from switchboard.pipeline.stages.vad import VADStage
from switchboard.pipeline.turn import TurnDecider, turn_text, unfinished
from switchboard.telephony import file_source
from switchboard.telephony.audio_file import load

from switchboard.config import TurnOptions
from switchboard.session import run_source
from tests.helpers import generous_budgets

FRAME_S = 0.02


def _settings(settings_factory, **overrides):
    """Behaviour, not speed: generous budgets, and the decision waits for the ASR's words
    however long a loaded machine takes to decode them (as scripts/eval_turns does)."""
    settings = generous_budgets(settings_factory(**overrides))
    settings.turn.text_wait_ms = 600_000
    return settings


@pytest.mark.parametrize("text", [
    "I want to pay my bill and", "I want to pay my bill and...", "My number is",
    "my phone number is 555 123", "My zip code is 9 4 1.", "I need help with the",
    "And so my fellow Americans.", "Um, I was calling about,", "so it's for my",
    "The problem is", "I was calling about my order -",
    "my phone number is 555 123 4",  # a phone number has ten digits, not seven
])
def test_unfinished_words_hold(text):
    assert unfinished(text) is not None


@pytest.mark.parametrize("text", [
    "I want to pay my bill.", "My phone number is 555 123 4567.", "Press 1 for sales.",
    "Please enter your account number.", "I don't know what it is.", "What is it?",
    "So I want to cancel my order.", "Thank you.", "My zip code is 94110.", "",
    "And the big red one with the silver buckle.",  # too long to be a lead-in
])
def test_finished_words_do_not(text):
    assert unfinished(text) is None


@pytest.mark.parametrize(("text", "awaiting", "why"), [
    ("5 5 5 0 1 0", "phone", "digits:6/10"),
    ("It is 555 010.", "phone", "digits:6/10"),
    ("9 4 1", "zip_code", "digits:3/5"),
    ("nine four one", "new_zip_code", "digits:3/5"),
    ("94107.", "zip_code", None),
    ("5 5 5 0 1 0 0 2 0 2", "phone", None),
    ("1 7 3", "pin_number", None),  # a PIN's length varies: the words cannot tell
    ("9 4 1", "", None),  # nobody asked for a number
    ("I don't have it.", "phone", None),
])
def test_a_number_shorter_than_the_one_asked_for_holds(text, awaiting, why):
    assert unfinished(text, awaiting) == why


def test_the_decision_deadlines():
    opts = TurnOptions()
    decide = TurnDecider(opts, stop_ms=192).decide
    assert decide(0.95, "I want to pay my bill.") == (opts.complete_wait_ms / 1000, "complete")
    assert decide(0.3, "I want to pay my bill.") == (opts.max_wait_ms / 1000, "unsure")
    assert decide(0.02, "I want to pay my bill.")[0] == opts.hold_ms / 1000
    # The words overrule a confident Smart Turn.
    assert decide(0.99, "I want to pay my bill and") == (opts.hold_ms / 1000,
                                                          "continues:and")
    assert decide(None, None) == (opts.max_wait_ms / 1000, "no-score")



def test_the_words_of_a_pause_reach_its_listeners_and_a_failing_one_harms_nothing():
    """Listeners get each pause's words (not a pause without any); one that raises
    neither stops the others nor the VAD stage's wait for the words."""
    from switchboard.pipeline.turn import TurnText

    async def main():
        texts, heard = TurnText(), []
        texts.listen(lambda text: 1 / 0)
        texts.listen(heard.append)
        texts.expect(1, 0.5)
        texts.offer(1, 0.5, "my order")
        texts.offer(2, 0.9, None)
        texts.offer(3, 1.2, "  ")
        return heard, await texts.wait(1, 0.5, 1.0)

    assert asyncio.run(main()) == (["my order"], "my order")

# --- the VAD stage with the real Silero VAD and Smart Turn, the words handed as the ASR would


async def _vad_alone(settings, bundle, path, words, tail_s=2.5, awaiting=""):
    """Run ``path`` through a VAD stage alone; at each pause, hand it ``words`` as the ASR
    stage's speculative transcript (``awaiting``: what the bot asked the caller for).
    Returns the stage's turn decisions and its events."""
    ctx = CallContext("turn-test", settings)
    ctx.awaiting = awaiting
    stage = VADStage(ctx, "caller", bundle.vad_scorer)
    texts = turn_text(ctx, "caller")
    loop = asyncio.get_running_loop()
    ctx.bus.subscribe(lambda e: e.kind == "speech_paused" and loop.call_soon(
        texts.offer, e.utterance, e.t_audio, words))
    try:
        async for frame in file_source.frames(load(path), realtime=False,
                                              tail_silence_s=tail_s):
            ctx.clock("caller").record(frame.t_audio, frame.captured)
            await stage.process_frame(frame, FrameDirection.DOWNSTREAM)
    finally:
        await stage.close()
    return texts.decisions, list(ctx.bus.history)


LIBRISPEECH = ("asr", "librispeech_triton", "1089-134686-0001.wav")  # one sentence, 6.2 s


def test_a_trailing_and_holds_the_turn(bundle, data, settings_factory):
    """The same finished sentence (Smart Turn scores its end complete): with its own words
    the turn ends at complete_wait_ms; transcribed as ending in "and", it is held for
    hold_ms, and with a longer hold still holds."""
    settings = _settings(settings_factory)
    opts = settings.turn
    path = data.joinpath(*LIBRISPEECH)
    words = "After early nightfall the yellow lamps would light up here and there the " \
            "squalid quarter of the brothels."
    done, _ = asyncio.run(_vad_alone(settings, bundle, path, words))
    held, _ = asyncio.run(_vad_alone(settings, bundle, path, words[:-1] + " and"))
    assert done[-1].reason == "complete" and held[-1].reason == "continues:and"
    waited = held[-1].t_decided - held[-1].t_speech_end
    assert opts.hold_ms / 1000 <= waited <= opts.hold_ms / 1000 + 2 * FRAME_S
    assert done[-1].t_decided - done[-1].t_speech_end <= opts.complete_wait_ms / 1000 + 0.04


def test_a_caller_between_the_groups_of_the_number_asked_for_is_not_cut_off(
        bundle, settings_factory, tmp_path):
    """Asked for the zip code, the caller says "nine four one", pauses 0.9 s, and says
    "zero seven": three digits of five, so the pause is held through. Asked for nothing,
    the same pause ends the turn."""
    import numpy as np
    import soundfile as sf
    from switchboard.models.tts import PiperTTS

    settings = _settings(settings_factory)
    tts = PiperTTS(settings.tts.voice, length_scale=1.1, noise=False)
    gap = np.zeros(int(0.9 * 16000), np.float32)
    path = tmp_path / "zip.wav"
    sf.write(path, np.concatenate([gap[:3200], tts.synthesize("Nine four one."), gap,
                                   tts.synthesize("Zero seven."), gap[:3200]]), 16000)
    held, _ = asyncio.run(_vad_alone(settings, bundle, path, "9 4 1", awaiting="zip_code"))
    ended, _ = asyncio.run(_vad_alone(settings, bundle, path, "9 4 1"))
    assert held[0].reason == "digits:3/5" and held[0].resumed, held[0]
    assert ended[0].t_decided is not None and not ended[0].resumed, ended[0]


@pytest.mark.parametrize("name", ["vm-msgsaved.wav", "enter_account.wav",
                                  "option-is-invalid.wav"])
def test_a_finished_short_sentence_ends_within_the_maximum_wait(bundle, data,
                                                                 settings_factory, name):
    """Real short prompts, through the whole caller graph: the turn ends (and the final
    transcript follows) no later than max_wait_ms after the last speech sample."""
    settings = _settings(settings_factory)
    rec = load(data / "asr" / "asterisk_8k" / name)
    ctx = CallContext(f"short-{name}", settings)
    result = asyncio.run(run_source(file_source.frames(rec, realtime=False,
                                                       tail_silence_s=2.5),
                                    rec.path, ctx, bundle))
    ended = [e for e in result.events if e.kind == "speech_ended" and not e.too_short]
    decided = [d for d in turn_text(ctx, "caller").decisions if d.t_decided is not None]
    assert ended and decided and decided[-1].t_speech_end == pytest.approx(ended[-1].t_audio)
    wait = decided[-1].t_decided - decided[-1].t_speech_end
    assert wait <= settings.turn.max_wait_ms / 1000 + 0.04, (name, decided[-1])
    assert result.finals()


def test_jfk_pauses_do_not_end_the_turn(bundle, data, settings_factory):
    """jfk_16k.wav is one turn with rhetorical pauses (a second after "And so, my fellow
    Americans", a second after "ask not"): the turn ends once, after "your country", and
    the bot answers once, then."""
    settings = _settings(settings_factory)
    rec = load(data / "asr" / "whisper" / "jfk_16k.wav")
    ctx = CallContext("jfk-turn", settings)
    result = asyncio.run(run_source(file_source.frames(rec, realtime=False), rec.path,
                                    ctx, bundle))
    ended = [e for e in result.events if e.kind == "speech_ended" and not e.too_short]
    assert len(ended) == 1 and ended[0].t_audio > 10.0, [e.t_audio for e in ended]
    (final,) = [e.text for e in result.events if e.kind == "transcript_final" and e.text
                and e.utterance == ended[0].utterance]
    assert "fellow Americans" in final and final.rstrip(".").endswith("your country")
    replies = [e for e in result.events if e.kind == "bot_reply"]
    assert [r.utterance for r in replies] == [ended[0].utterance]


def test_without_turn_detection_the_vad_ends_jfk_at_its_first_pause(bundle, data,
                                                                     settings_factory):
    """The control: VAD silence alone (turn.enabled = false) ends the turn after "my
    fellow Americans", as before Smart Turn."""
    settings = _settings(settings_factory, turn={"enabled": False})
    path = data / "asr" / "whisper" / "jfk_16k.wav"
    _, events = asyncio.run(_vad_alone(settings, bundle, path, None))
    ended = [e.t_audio for e in events if e.kind == "speech_ended" and not e.too_short]
    assert ended and ended[0] < 3.0


def test_the_agent_leg_ends_its_turns_at_the_complete_wait(bundle, data, settings_factory):
    """The bot answers the caller only: on the agent's leg no Smart Turn runs (its cost is
    per pause, on every assisted call) and a turn ends at complete_wait_ms of silence, so
    JFK read by an agent ends at his first long pause, each end decided complete_wait_ms
    after the last speech sample."""
    settings = _settings(settings_factory)
    wait = settings.turn.complete_wait_ms / 1000
    assert wait > settings.vad.stop_ms / 1000  # so the check below tells the two apart

    async def run():
        ctx = CallContext("agent-turns", settings)
        stage = VADStage(ctx, "agent", bundle.vad_scorer)
        assert stage._smart is None
        now, ends = [0.0], []
        ctx.bus.subscribe(lambda e: e.kind == "speech_ended" and ends.append((e, now[0])))
        try:
            async for frame in file_source.frames(load(data / "asr" / "whisper" /
                                                       "jfk_16k.wav"),
                                                  realtime=False, tail_silence_s=2.5):
                frame.leg = "agent"
                now[0] = frame.t_end
                ctx.clock("agent").record(frame.t_audio, frame.captured)
                await stage.process_frame(frame, FrameDirection.DOWNSTREAM)
        finally:
            await stage.close()
        return turn_text(ctx, "agent").decisions, ends

    decisions, ends = asyncio.run(run())
    assert decisions == []
    spoken = [(e, at) for e, at in ends if not e.too_short]
    assert len(spoken) >= 2 and spoken[0][0].t_audio < 3.0, [e.t_audio for e, _ in ends]
    for event, decided_at in ends:
        assert wait - 1e-6 <= decided_at - event.t_audio <= wait + 0.04, (event, decided_at)
