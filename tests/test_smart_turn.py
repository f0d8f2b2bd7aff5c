"""Smart Turn v3.2 from pipecat's wheel: loads on one thread, hears a finished sentence."""

from pathlib import Path

import numpy as np
import pytest
from switchboard.models.registry import ModelUnavailableError
from switchboard.models.smart_turn import SmartTurn, shared_smart_turn
from switchboard.telephony.audio_file import load

SILENCE_S = 0.2  # what the VAD stage has heard of the pause when it asks


@pytest.fixture(scope="module")
def smart() -> SmartTurn:
    return shared_smart_turn()


def _until(audio: np.ndarray, t: float) -> np.ndarray:
    """The recording up to ``t`` s, as the VAD stage holds it at that moment."""
    return audio[: int(t * 16000)]


@pytest.mark.parametrize("name", ["jfk_16k.wav", "jfk.flac"])
def test_a_sentence_end_scores_above_its_mid_sentence_pauses(smart, data, name):
    """JFK: the end of "... for your country." against the pauses after "ask not" (4.38 s)
    and "what your country can do for you" (7.65 s), each with 0.2 s of the pause heard."""
    audio = load(data / "asr" / "whisper" / name).audio
    end = smart.probability(_until(audio, 10.59 + SILENCE_S))
    mids = [smart.probability(_until(audio, t + SILENCE_S)) for t in (4.38, 7.65)]
    assert end > 0.5 > max(mids), (end, mids)


def test_a_finished_prompt_scores_above_an_unfinished_one(smart, data):
    """Two real telephone prompts: "Please enter your account number." is over; "the
    number I have is" (a prompt made to be followed by digits) is not."""
    asterisk = data / "asr" / "asterisk_8k"
    done = smart.probability(load(asterisk / "enter_account.wav").audio)
    hanging = smart.probability(load(asterisk / "the-num-i-have-is.wav").audio)
    assert done > hanging + 0.3, (done, hanging)


def test_int16_and_float_input_agree(smart, data):
    audio = load(data / "asr" / "whisper" / "jfk_16k.wav").audio[: 11 * 16000]
    pcm = np.clip(audio * 32768, -32768, 32767).astype(np.int16)
    assert smart.probability(pcm) == pytest.approx(smart.probability(audio), abs=0.02)


def test_runs_on_one_thread(smart):
    options = smart._session.get_session_options()
    assert options.intra_op_num_threads == 1 and options.inter_op_num_threads == 1


def test_a_missing_model_names_the_package(tmp_path):
    with pytest.raises(ModelUnavailableError) as err:
        SmartTurn(Path(tmp_path) / "smart-turn-v3.2-cpu.onnx")
    assert "pipecat-ai" in str(err.value)


def test_a_corrupt_model_names_the_package(tmp_path):
    bad = Path(tmp_path) / "smart-turn-v3.2-cpu.onnx"
    bad.write_bytes(b"not an onnx file")
    with pytest.raises(ModelUnavailableError) as err:
        SmartTurn(bad)
    assert "pipecat-ai" in str(err.value)


def test_an_uninstalled_package_names_it(monkeypatch):
    import switchboard.models.smart_turn as mod

    def missing(spec):
        raise ModelUnavailableError(spec.name, spec.package, "package not installed")

    monkeypatch.setattr(mod, "locate", missing)
    with pytest.raises(ModelUnavailableError, match="pipecat-ai"):
        SmartTurn()
