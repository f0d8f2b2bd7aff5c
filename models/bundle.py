"""Models loaded once per process and shared by every call's graph.

Loading is lazy (a model is read the first time a stage asks for it) and thread-safe, with
one lock per model, so a model loading never holds up another one's users. Model work
runs on per-model workers shared by every call (:meth:`ModelBundle.executor`): a queue per
model, sized to what the model can run at once, so a call's decode waits only for model
capacity, never for a lock another call holds. Stateful per-stream models (the Silero
VAD's recurrent state) are not shared: the bundle hands out a new scorer per call.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path

from switchboard.models.registry import cache_dir
from switchboard.models.tts import split_sentences

from switchboard.config import Settings

log = logging.getLogger(__name__)

_BLAS_LIMIT = None


def limit_blas_threads() -> None:
    """Run numpy's BLAS on one thread, process-wide.

    The numpy work here (MiniLM, prosody) is small matrices per call, which gain nothing
    from BLAS threads, while CTranslate2 and onnxruntime keep the cores busy: measured on
    this 2-core machine under that load, OpenBLAS with 2 threads took 2.1 s per MiniLM
    sentence against 60 ms with one, spinning threads fighting for the same cores.
    """
    global _BLAS_LIMIT
    import scipy.signal  # noqa: F401 - load scipy's own OpenBLAS so the limit covers it too
    import scipy.special  # noqa: F401
    from threadpoolctl import threadpool_limits

    _BLAS_LIMIT = threadpool_limits(limits=1, user_api="blas")


class ModelQueue(ThreadPoolExecutor):
    """A model's worker threads, shared by every call, that know how busy they are.

    Best-effort work asks :attr:`idle` before it is queued: the ASR starts a partial only
    while a worker beyond the one it keeps for finals is idle, so a call's final does not
    wait behind other calls' partials.
    """

    def __init__(self, workers: int, name: str):
        super().__init__(max_workers=workers, thread_name_prefix=f"{name}-")
        self.workers = workers
        self._busy = 0  # submitted and not finished (queued or running)
        self._busy_lock = threading.Lock()

    def submit(self, fn, /, *args, **kwargs):
        with self._busy_lock:
            self._busy += 1
        future = super().submit(fn, *args, **kwargs)
        future.add_done_callback(self._finished)
        return future

    def _finished(self, _future) -> None:
        with self._busy_lock:
            self._busy -= 1

    @property
    def idle(self) -> int:
        """Workers neither running nor owed a queued job."""
        return max(0, self.workers - self._busy)


class ModelBundle:
    """The process's models, built from one :class:`~switchboard.config.Settings`."""

    def __init__(self, settings: Settings):
        limit_blas_threads()
        self.settings = settings
        self._lock = threading.Lock()  # guards the per-model locks and executors below
        self._locks: dict[str, threading.Lock] = defaultdict(threading.Lock)
        self._executors: dict[str, ModelQueue] = {}
        self._asr: dict[str, object] = {}
        self._tts = None
        self._phrases = None
        self._embedder = None
        self._index = None
        self._articles = None
        self._intents = None
        self._emotion = None
        self._dialogue = None

    def _model_lock(self, name: str) -> threading.Lock:
        with self._lock:
            return self._locks[name]

    def executor(self, model: str) -> Executor:
        """The worker queue of ``model`` ("asr", "tts", "nlu", "prosody"), shared by every
        call: as many threads as the model runs at once (Whisper: ``asr.inter_threads``,
        the others one), work queued in order of arrival."""
        sizes = {"asr": self.settings.asr.inter_threads}
        with self._lock:
            if model not in self._executors:
                self._executors[model] = ModelQueue(max(1, sizes.get(model, 1)), model)
            return self._executors[model]

    def asr(self, model: str | None = None):
        """The shared WhisperASR for ``model`` (the configured primary by default)."""
        from switchboard.models.whisper_asr import WhisperASR

        opts = self.settings.asr
        name = model or opts.model
        with self._model_lock(f"asr:{name}"):
            if name not in self._asr:
                self._asr[name] = WhisperASR(
                    name, device=opts.device, compute_type=opts.compute_type,
                    cpu_threads=opts.cpu_threads, inter_threads=opts.inter_threads,
                    beam_size=opts.beam_size, min_window_s=opts.min_window_s,
                    window_margin_s=opts.window_margin_s,
                )
            return self._asr[name]

    def vad_scorer(self, rung: str):
        from switchboard.models.vad import make_scorer

        return make_scorer(rung, self.settings.vad.webrtc_mode)

    def tts(self):
        from switchboard.models.tts import PiperTTS

        with self._model_lock("tts"):
            if self._tts is None:
                opts = self.settings.tts
                self._tts = PiperTTS(opts.voice, opts.length_scale)
            return self._tts

    def phrases(self):
        """The process-wide cache of rendered reply sentences (models.tts.PhraseCache)."""
        from switchboard.models.tts import PhraseCache

        tts = self.tts()
        with self._model_lock("phrases"):
            if self._phrases is None:
                self._phrases = PhraseCache(tts)
            return self._phrases

    @property
    def embedding_cache(self) -> Path:
        """Where sentence embeddings of the knowledge base and intent phrases are kept."""
        return Path(cache_dir()) / "embeddings"

    def embedder(self):
        from switchboard.models.embedder import MiniLMEmbedder

        with self._model_lock("embedder"):
            if self._embedder is None:
                self._embedder = MiniLMEmbedder()
            return self._embedder

    def knowledge(self):
        """(articles, hybrid index) for the configured KB; raises KnowledgeBaseError."""
        from switchboard.pipeline.intents import IntentExamplesError, load_examples
        from switchboard.pipeline.knowledge import load_abcd
        from switchboard.pipeline.retrieval import HybridIndex

        embedder = self.embedder()
        with self._model_lock("knowledge"):
            if self._index is None:
                opts = self.settings.nlu
                self._articles = load_abcd(opts.kb_dir)
                # The site's own intent files are indexed with the articles, as the
                # classifier reads them (not only the bundled phrases).
                try:
                    examples = load_examples(opts.intent_examples)
                except IntentExamplesError as exc:
                    log.warning("intent examples not indexed (%s): articles alone", exc)
                    examples = {}
                self._index = HybridIndex(self._articles, embedder, opts.lexical_weight,
                                          self.embedding_cache, examples=examples)
            return self._articles, self._index

    def intents(self):
        """The IntentDetector trained from the configured example phrases.

        Raises pipeline.intents.IntentExamplesError when the files are missing or malformed.
        """
        from switchboard.pipeline.intents import IntentDetector, load_examples

        embedder = self.embedder()
        with self._model_lock("intents"):
            if self._intents is None:
                opts = self.settings.nlu
                examples = load_examples(opts.intent_examples)
                self._intents = IntentDetector(
                    examples, embedder, opts.oos_threshold, opts.lexical_oos_threshold,
                    self.embedding_cache,
                )
            return self._intents

    def dialogue(self):
        """What every call's dialogue shares (pipeline.stages.policy.DialogueKit): flow
        plans from the knowledge base (none without one: the bot can only clarify), the
        FAQ answerer over ``dialogue.faq_answers`` (none if the file is broken), and the
        configured action interface."""
        from switchboard.pipeline.actions import actions_from
        from switchboard.pipeline.dialogue import flow_plans
        from switchboard.pipeline.faq import FaqAnswerer, FaqError, FaqStore
        from switchboard.pipeline.knowledge import KnowledgeBaseError
        from switchboard.pipeline.stages.policy import DialogueKit

        try:
            articles, _ = self.knowledge()
        except KnowledgeBaseError:
            articles = []  # the graph reports it
        embedder = self.embedder()
        with self._model_lock("dialogue"):
            if self._dialogue is None:
                opts = self.settings.dialogue
                try:
                    faq = FaqAnswerer(FaqStore(opts.faq_answers), embedder,
                                      cache_dir=self.embedding_cache)
                except FaqError as exc:
                    log.warning("no FAQ answers (%s): FAQ questions go to a person", exc)
                    faq = None
                self._dialogue = DialogueKit(flow_plans(articles, opts), faq,
                                             actions_from(opts))
            return self._dialogue

    def emotion(self):
        """The anger/stress model (committed weights); raises ModelUnavailableError."""
        from switchboard.models.emotion import EmotionModel

        with self._model_lock("emotion"):
            if self._emotion is None:
                self._emotion = EmotionModel.load()
            return self._emotion

    def warm_up(self) -> None:
        """Load everything now rather than on the first call, render the dialogue's
        fixed phrases into the shared cache, and index the FAQ answers.

        A missing model raises ModelUnavailableError (the VAD's too: every call needs the
        top rung of its ladder); a missing knowledge base or intent file does not: each
        call's graph reports it and runs without (CallGraph).
        """
        from switchboard.pipeline.intents import IntentExamplesError
        from switchboard.pipeline.knowledge import KnowledgeBaseError
        from switchboard.pipeline.policy import FIXED_PHRASES

        self.vad_scorer(self.settings.budgets.ladder("vad")[0])
        if self.settings.turn.enabled:
            from switchboard.models.smart_turn import shared_smart_turn

            shared_smart_turn()  # a missing turn model fails here, not in the first call
        self.asr()
        self.asr(self.settings.asr.fallback_model)
        phrases = self.phrases()
        for phrase in FIXED_PHRASES:
            for sentence in split_sentences(phrase):
                phrases.render(sentence)
        self.emotion()
        for load in (self.knowledge, self.intents):
            try:
                load()
            except (KnowledgeBaseError, IntentExamplesError):
                pass
        kit = self.dialogue()
        if kit.faq is not None:
            kit.faq.select(None, "warm up")  # embeds the answers (cached on disk)
