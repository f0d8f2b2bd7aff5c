"""All configuration in one typed place, with defaults.

``Settings`` gathers the per-concern option classes; ``load_settings`` reads them from an
optional TOML file (same section names as the classes' fields) over the defaults, and the
budgets from ``budgets.toml``. Nothing else in the code base reads configuration files or
environment variables for behaviour (the device and cache overrides in :mod:`models`
excepted, which select hardware and disk, not behaviour).
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BUDGETS = ROOT / "budgets.toml"


@dataclass
class AudioOptions:
    """Internal audio format: fixed by design, listed here so nobody hard-codes it twice."""

    sample_rate: int = 16000
    frame_ms: int = 20

    @property
    def frame_samples(self) -> int:
        return self.sample_rate * self.frame_ms // 1000


@dataclass
class VADOptions:
    """Voice activity detection: Silero from pipecat's wheel, WebRTC VAD as the cheap rung."""

    confidence: float = 0.5  # Silero speech probability threshold
    start_ms: int = 64  # speech this long opens an utterance
    stop_ms: int = 192  # silence this long closes it (end of turn)
    webrtc_mode: int = 2
    min_utterance_ms: int = 200  # shorter blips are dropped


@dataclass
class TurnOptions:
    """End of the caller's turn (pipeline/turn.py): decided at ``vad.stop_ms`` of silence.

    Smart Turn v3.2 and the speculative transcript are read at ``vad.stop_ms`` of
    silence; the turn then ends at ``complete_wait_ms`` when Smart Turn scores it complete
    (``threshold``) and its last words do not continue, at ``max_wait_ms`` when Smart Turn
    is unsure, at ``hold_ms`` when the words are unfinished ("... and", "my number is",
    part of a phone number) or Smart Turn scores it under ``incomplete_below``. Pauses
    between two finished sentences are mostly under 320 ms, a rhetorical pause after "my
    fellow Americans" a second (docs/evaluation.md has the curve). ``enabled = false``:
    ``vad.stop_ms`` of silence alone ends the turn, as before. ``text_wait_ms``: how long
    (wall clock) the decision waits for the pause's transcript before deciding without it:
    the reply needs that decode anyway (so the wait never delays it), but the prosody
    stage's scores wait on the turn's end. Off the line (--fast) set it without limit, as
    scripts/eval_turns does, so that no decision depends on the machine's speed.
    ``legs``: the legs whose turns are decided so. The bot answers only the caller; on the
    other legs (the agent) the turn ends at ``complete_wait_ms`` of silence, the wait a
    finished caller turn gets, without Smart Turn's cost (docs/benchmarks.md, assisted calls).
    """

    enabled: bool = True
    legs: list[str] = field(default_factory=lambda: ["caller"])
    smart_turn: bool = True
    use_words: bool = True
    threshold: float = 0.5
    incomplete_below: float = 0.1
    complete_wait_ms: int = 320
    max_wait_ms: int = 600
    hold_ms: int = 1200
    text_wait_ms: int = 2000


@dataclass
class ASROptions:
    """Streaming Whisper: partials while speaking, a speculative final at each pause.

    The ladder's last rung (``fallback_model``) decodes with ``fallback_model`` on a shorter
    window (``fallback_min_window_s``, ``fallback_window_margin_s``): about 40% less
    encoder time per decode (docs/architecture.md). ``inter_threads`` decodes run at once,
    each on ``cpu_threads`` threads, for all calls together (docs/benchmarks.md).
    """

    model: str = "tiny.en"
    fallback_model: str = "tiny.en"
    fallback_min_window_s: float = 8.0
    fallback_window_margin_s: float = 2.0
    device: str = "auto"
    compute_type: str = "int8"
    cpu_threads: int = 1
    inter_threads: int = 2
    beam_size: int = 1
    min_window_s: float = 12.0
    window_margin_s: float = 4.0
    partial_interval_ms: int = 1000
    # The agent's partials only draw the coach view (nothing waits on them), and each costs
    # a decode as dear as a caller's final on the shared queue (docs/benchmarks.md).
    agent_partial_interval_ms: int = 2000
    speculative: bool = True
    # Whisper's previous text while the bot waits for a number (a phone number, zip code,
    # order ID or PIN): it then writes the digits it hears one by one, which the dialogue
    # reads far more often right (scripts/eval_digits, docs/evaluation.md). "" turns it off.
    digit_prompt: str = "My number is 4 1 5 2 0 9 7 3 6 8."


@dataclass
class ProsodyOptions:
    """Pitch, energy and speaking-rate features per utterance and rolling per call."""

    f0_min_hz: float = 60.0
    f0_max_hz: float = 400.0
    rolling_alpha: float = 0.3  # weight of the newest utterance in the rolling features
    # Anger/stress (models/emotion.py): the speaker's reference is learnt from this much of
    # their first speech in the call; the rolling scores weigh the newest utterance so.
    baseline_min_s: float = 3.0
    baseline_max_s: float = 12.0
    # Shrinking the reference toward the population's neutral mean helps on RAVDESS (one
    # studio channel) but drags a caller's reference toward that channel: off by default.
    baseline_prior_s: float = 0.0
    emotion_alpha: float = 0.5
    emotion_window_s: float = 8.0  # a longer turn is scored on its last 8 s (cost ~20 ms)
    # The anger/stress score waits this long after the end of the turn for the ASR's voice
    # embedding (it comes with the final transcript), then scores from the voice features
    # alone: the score must be out within the emotion_update budget (500 ms).
    embedding_wait_ms: float = 400.0


@dataclass
class NLUOptions:
    """Intent detection and knowledge retrieval.

    ``intent_examples``: TOML files of example phrases per intent (pipeline/intents.py),
    merged in order; add a site's own file after the bundled one. The out-of-scope
    thresholds are set from held-out data by ``scripts/eval_intent`` (docs/evaluation.md).
    ``prepare_at_pause``: embed each pause's speculative words while the turn is decided
    (a vector ready when the turn ends on them; costs one embedding per pause).
    """

    kb_dir: str = str(ROOT.parent / "shared" / "data" / "kb" / "abcd")
    top_k: int = 3
    lexical_weight: float = 0.1  # BM25's share of the hybrid score (docs/evaluation.md)
    intent_examples: list[str] = field(default_factory=lambda: [
        str(ROOT / "pipeline" / "data" / "intents" / name)
        for name in ("abcd.toml", "out_of_scope.toml")
    ])
    oos_threshold: float = -0.60  # best intent's SVM margin below this: "out_of_scope"
    lexical_oos_threshold: float = -0.81  # the same for the n-gram-only classifier (lexical rung)
    prepare_at_pause: bool = True


@dataclass
class TTSOptions:
    """Piper voice synthesis."""

    voice: str = "en_US-joe-medium"
    length_scale: float = 1.0


@dataclass
class PolicyOptions:
    """What the bot does with what it understood."""

    mode: str = "bot"  # "bot" answers from the KB; "coach" (later) prompts the agent
    # An unrecognised fragment this short ("Hi.", "Also,") is a pause mid-thought, not a
    # request: the bot waits for more instead of asking the caller to repeat.
    min_words_to_clarify: int = 3
    # A number keyed in (pipeline/keypad.py) is taken this long after the last key when
    # the caller presses neither # nor all of its digits.
    keypad_timeout_s: float = 4.0
    # A caller who talks over the first this-many seconds of the reply to their words was
    # still talking: the reply is withdrawn and their next words join the last (0: never).
    resume_within_s: float = 1.5


@dataclass
class EscalationOptions:
    """When the bot hands a caller to a human (pipeline/escalation.py)."""

    anger_threshold: float = 7.0  # rolling anger above this, once the reference is ready
    # ...and only from a score this confident (EmotionScore.confidence: thin reference, or
    # voice and embedding heads disagreeing, lower it).
    anger_min_confidence: float = 0.5
    # Rolling anger above this hands off when the caller's last few turns also carry
    # complaint words, profanity or a mention of a manager (pipeline/escalation.py).
    anger_threshold_with_words: float = 5.0
    words_window_turns: int = 3
    misunderstood_in_a_row: int = 2
    dtmf_key: str = "0"
    ask_for_person: bool = True
    # The dialogue's own handoffs (a complex flow, a failed action...) go to a person.
    dialogue: bool = True


@dataclass
class DialogueOptions:
    """The bot's side of the conversation (pipeline/dialogue.py, faq.py, actions.py).

    ``complex_flows``: intents the bot does not attempt: it collects who the caller is,
    then hands the call to a person with everything collected (an escalation rule).
    ``actions``: "demo" (an in-memory store of invented customers) or "webhook" (JSON over
    HTTP to ``webhook_url``; contract in pipeline/actions.py).
    """

    complex_flows: list[str] = field(default_factory=lambda: [
        "manage_dispute_bill", "mistimed_billing_never_bought", "status_service_added",
        "status_service_removed",
    ])
    # A caller's answer that parses as the slot asked for fills it; otherwise an intent
    # other than the active flow, with at least this margin (default: any in-scope intent)
    # and this many words, is a change of topic. Shorter turns mid-flow are answers said
    # oddly ("I'm a bronze member", "I don't have it"); docs/evaluation.md.
    topic_change_confidence: float = float("-inf")
    topic_change_min_words: int = 5
    max_asks: int = 3  # asking one value this many times without an answer hands off
    faq_answers: list[str] = field(default_factory=lambda: [
        str(ROOT / "pipeline" / "data" / "faq" / "answers.toml")])
    faq_min_score: float = 0.3  # below this the bot asks the FAQ question again
    actions: str = "demo"
    webhook_url: str = ""
    webhook_token: str = ""
    webhook_timeout_s: float = 5.0


@dataclass
class HandoffOptions:
    """How a handed-off caller reaches an agent (switchboard/callcenter.py)."""

    # How long the caller waits on hold for an agent to answer before the bot takes a
    # callback request instead.
    wait_s: float = 45.0
    # Each agent's phone rings this long before the next free agent is tried.
    ring_s: float = 15.0
    # While waiting, a spoken reassurance over the hold music this often.
    hold_message_every_s: float = 20.0
    # Agents reached at a fixed SIP address, without registering (a desk phone, a PBX
    # queue): name → SIP URI, rung after the registered agents.
    desk_phones: dict[str, str] = field(default_factory=dict)


@dataclass
class ServerOptions:
    """``switchboard serve``: the HTTP server and admission control."""

    http_host: str = "127.0.0.1"
    http_port: int = 8080
    # Calls held at once before a new one is refused (SIP 503 + Retry-After). From the
    # capacity benchmark on 2 cores (docs/benchmarks.md); 0 = no limit.
    max_calls: int = 6
    retry_after_s: int = 30
    # Bearer token for the JSON API; empty = a random one, printed at start.
    api_token: str = ""
    # Shutdown: live calls get a BYE, then this long to drain their analysis.
    shutdown_grace_s: float = 5.0


@dataclass
class StoreOptions:
    """Where call records go (pipeline/store.py): SQLite by default, any SQLAlchemy URL.

    ``url``: ``sqlite:///~/.local/share/switchboard/calls.db``, ``sqlite:///:memory:`` for
    tests, ``postgresql+psycopg://user@host/switchboard`` for several machines.
    ``commit_interval_s`` bounds what a crash (SIGKILL, power cut of the process) can lose:
    events are committed in batches at most this long after they were published.
    ``record_audio``: keep each leg's audio as a WAV under ``audio_dir`` (the store records
    the path; the call writes the file).
    """

    url: str = "sqlite:///" + str(Path.home() / ".local" / "share" / "switchboard" / "calls.db")
    commit_interval_s: float = 0.25
    record_audio: bool = False
    audio_dir: str = str(Path.home() / ".local" / "share" / "switchboard" / "audio")


@dataclass
class FaultOptions:
    """Deliberate faults for tests and drills.

    ``extra_latency_ms`` slows a stage's every step; ``fail_rungs`` ("stage:rung", e.g.
    "vad:silero") makes a stage's work raise while the stage is on that rung, as a crashing
    model would.
    """

    extra_latency_ms: dict[str, float] = field(default_factory=dict)
    fail_rungs: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Budget:
    """One measured step's latency budget and the stage whose ladder it drives."""

    name: str
    stage: str
    budget_ms: float


@dataclass
class BudgetOptions:
    """Budgets per step, ladders per stage, and the degrade/recover policy."""

    budgets: dict[str, Budget] = field(default_factory=dict)
    ladders: dict[str, list[str]] = field(default_factory=dict)
    window: int = 20
    degrade_after: int = 3
    recover_after: int = 30
    #: stage → its own (window, degrade_after, recover_after), for stages timed per frame:
    #: 20 observations are 0.4 s of a VAD's frames, where one stall of the loop would move it.
    stage_policies: dict[str, tuple[int, int, int]] = field(default_factory=dict)

    def for_stage(self, stage: str) -> list[Budget]:
        return [b for b in self.budgets.values() if b.stage == stage]

    def policy(self, stage: str) -> tuple[int, int, int]:
        """(window, degrade_after, recover_after) of ``stage``."""
        return self.stage_policies.get(
            stage, (self.window, self.degrade_after, self.recover_after))

    def ladder(self, stage: str) -> list[str]:
        return self.ladders.get(stage, ["full"])


@dataclass
class SipOptions:
    """SIP endpoint and RTP media (telephony/sip/, docs/architecture.md "SIP")."""

    host: str = "127.0.0.1"
    port: int = 5060
    transports: list[str] = field(default_factory=lambda: ["udp", "tcp"])
    realm: str = "switchboard"
    user: str = "switchboard"  # our From user on dial-outs
    nonce_ttl_s: float = 300.0  # older nonces are answered stale=true
    default_expires_s: int = 3600
    min_expires_s: int = 60
    max_expires_s: int = 7200
    # Packets held before playout (20 ms each: the jitter absorbed, and delay added to
    # every reply): the depth starts at jitter_prefetch_frames and follows the stream's
    # jitter between jitter_min_frames and jitter_max_frames (telephony/sip/jitterbuffer.py);
    # all three equal keep it fixed.
    jitter_prefetch_frames: int = 2
    jitter_min_frames: int = 1
    jitter_max_frames: int = 8
    jitter_capacity_frames: int = 50  # 1 s: a stalled consumer loses the oldest audio
    rtcp_interval_s: float = 5.0
    bye_wait_s: float = 2.0  # hang-up waits this long for the BYE's 200, then moves on


@dataclass
class CoachOptions:
    """Whisper-coaching (pipeline/coach.py): which rules run and how prompts are paced.

    The rules themselves (triggers, wording, priorities) live in ``rules`` (a TOML file;
    "" means the bundled pipeline/data/coach.toml).
    """

    enabled: bool = True
    rules: str = ""
    # Pacing of spoken prompts: at least ``min_gap_s`` between two (from the end of one to
    # the start of the next), and each rule silent for its own ``cooldown_s`` (coach.toml)
    # after it fired.
    min_gap_s: float = 8.0
    # Never over the agent: a prompt waits for the agent's pause (their VAD's end of
    # speech) plus ``pause_wait_ms``; a prompt still waiting after ``max_wait_s`` is
    # dropped from the ear (it stays on screen, ``played=False``).
    pause_wait_ms: int = 0
    max_wait_s: float = 10.0
    max_words: int = 6  # spoken prompts longer than this are refused when rules load
    # Scores below this confidence (EmotionScore.confidence) drive no prompt: a thin or
    # contradictory reading must not make the agent apologise to a calm caller.
    min_confidence: float = 0.5
    # A call whose risk (0-10) reaches this gets the escalation suggestion; RiskAlert is
    # published whenever the level moves by ``risk_step`` or more.
    escalate_at: float = 9.0
    risk_step: float = 1.0
    silence_s: float = 15.0  # nobody has spoken this long while bridged: a nudge
    hold_s: float = 45.0  # the caller has been on hold this long: a nudge
    tick_s: float = 0.1  # how often timers (silence, hold, pending prompts) are checked


@dataclass
class SupervisionOptions:
    """Supervisors on live calls: the SIP feature code that joins one (then DTMF 4 listen,
    5 whisper, 6 barge, as Asterisk's ChanSpy)."""

    feature_code: str = "*55"
    #: The board page gets at most one update per call per interval (4 a second).
    board_interval_s: float = 0.25
    #: Risk alerts kept on a call's row (the latest ones).
    alerts_kept: int = 5
    #: How long a supervisor's browser gets for ICE and DTLS once answered.
    connect_s: float = 15.0


@dataclass
class PrivacyOptions:
    """What is kept out of stored transcripts, the supervisor board and the logs.

    Runs of ``min_digits`` digits or more (card, account and phone numbers, read as
    numerals or as digit words, in groups) are masked by pipeline/redact.py: in what the
    call store writes and on the supervisor board when ``redact_digits``, in every log
    record of ``switchboard serve`` when ``redact_logs``. The agent on the call still sees
    them live: they need the number to do the work.
    """

    redact_digits: bool = True
    min_digits: int = 6  # runs of this many digits or more (cards, accounts) are masked
    redact_logs: bool = True


@dataclass
class CarrierOptions:
    """Carrier media streams (``/media-stream``, Twilio). With ``twilio_auth_token`` set,
    a stream whose handshake lacks a valid ``X-Twilio-Signature`` is refused (403);
    without it the route is public, like the SIP address. ``public_url`` is the URL the
    carrier was told to call (``wss://host/media-stream``) when a proxy in front changes
    what this server sees; "" means the request's own URL."""

    twilio_auth_token: str = ""
    public_url: str = ""


@dataclass
class Settings:
    """Every option of one Switchboard process."""

    audio: AudioOptions = field(default_factory=AudioOptions)
    vad: VADOptions = field(default_factory=VADOptions)
    turn: TurnOptions = field(default_factory=TurnOptions)
    asr: ASROptions = field(default_factory=ASROptions)
    prosody: ProsodyOptions = field(default_factory=ProsodyOptions)
    nlu: NLUOptions = field(default_factory=NLUOptions)
    tts: TTSOptions = field(default_factory=TTSOptions)
    policy: PolicyOptions = field(default_factory=PolicyOptions)
    store: StoreOptions = field(default_factory=StoreOptions)
    escalation: EscalationOptions = field(default_factory=EscalationOptions)
    dialogue: DialogueOptions = field(default_factory=DialogueOptions)
    handoff: HandoffOptions = field(default_factory=HandoffOptions)
    server: ServerOptions = field(default_factory=ServerOptions)
    faults: FaultOptions = field(default_factory=FaultOptions)
    budgets: BudgetOptions = field(default_factory=BudgetOptions)
    sip: SipOptions = field(default_factory=SipOptions)
    coach: CoachOptions = field(default_factory=CoachOptions)
    supervision: SupervisionOptions = field(default_factory=SupervisionOptions)
    privacy: PrivacyOptions = field(default_factory=PrivacyOptions)
    carrier: CarrierOptions = field(default_factory=CarrierOptions)


def load_budgets(path: str | Path = DEFAULT_BUDGETS) -> BudgetOptions:
    """Parse ``budgets.toml``."""
    with open(path, "rb") as fh:
        raw = tomllib.load(fh)
    policy = raw.get("policy", {})
    budgets = {
        name: Budget(name=name, stage=str(b["stage"]), budget_ms=float(b["budget_ms"]))
        for name, b in raw.get("budgets", {}).items()
    }
    ladders = {k: [str(r) for r in v] for k, v in raw.get("ladders", {}).items()}
    window = int(policy.get("window", 20))
    degrade_after = int(policy.get("degrade_after", 3))
    recover_after = int(policy.get("recover_after", 30))
    stage_policies = {
        stage: (int(p.get("window", window)), int(p.get("degrade_after", degrade_after)),
                int(p.get("recover_after", recover_after)))
        for stage, p in policy.items() if isinstance(p, dict)
    }
    return BudgetOptions(
        budgets=budgets,
        ladders=ladders,
        window=window,
        degrade_after=degrade_after,
        recover_after=recover_after,
        stage_policies=stage_policies,
    )


def load_settings(
    path: str | Path | None = None,
    budgets: str | Path = DEFAULT_BUDGETS,
    overrides: dict[str, dict[str, Any]] | None = None,
) -> Settings:
    """Defaults, then the TOML file at ``path`` (if any), then ``overrides``."""
    settings = Settings(budgets=load_budgets(budgets))
    layers: list[dict[str, Any]] = []
    if path is not None:
        with open(path, "rb") as fh:
            layers.append(tomllib.load(fh))
    if overrides:
        layers.append(overrides)
    for layer in layers:
        for section, values in layer.items():
            target = getattr(settings, section, None)
            if target is None or not dataclasses.is_dataclass(target):
                raise ValueError(f"unknown configuration section [{section}]")
            known = {f.name for f in dataclasses.fields(target)}
            for key, value in values.items():
                if key not in known:
                    raise ValueError(f"unknown option {section}.{key}")
                setattr(target, key, value)
    return settings
