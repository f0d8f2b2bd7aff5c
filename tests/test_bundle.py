from switchboard.models.bundle import ModelBundle
from threadpoolctl import threadpool_info


def test_numpy_blas_runs_on_one_thread(settings_factory):
    ModelBundle(settings_factory())
    blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
    assert blas and all(i["num_threads"] == 1 for i in blas)


def test_models_are_shared(bundle):
    assert bundle.asr("tiny.en") is bundle.asr("tiny.en")
    assert bundle.vad_scorer("silero") is not bundle.vad_scorer("silero")  # per-call state
