from switchboard.models.bundle import ModelBundle
from threadpoolctl import threadpool_info


def test_numpy_blas_runs_on_one_thread(settings_factory):
    ModelBundle(settings_factory())
    blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
    assert blas and all(i["num_threads"] == 1 for i in blas)


def test_models_are_shared(bundle):
    assert bundle.asr("tiny.en") is bundle.asr("tiny.en")
    assert bundle.vad_scorer("silero") is not bundle.vad_scorer("silero")  # per-call state


def test_a_model_queue_knows_when_every_worker_is_busy():
    import threading

    from switchboard.models.bundle import ModelQueue

    queue = ModelQueue(2, "test")
    gate = threading.Event()
    try:
        assert queue.idle == 2
        first = queue.submit(gate.wait)
        assert queue.idle == 1
        second = queue.submit(gate.wait)
        queued = queue.submit(gate.wait)
        assert queue.idle == 0
        queued.cancel()  # a cancelled job frees its place at once
        gate.set()
        first.result(5), second.result(5)
        assert queue.idle == 2
    finally:
        gate.set()
        queue.shutdown()
