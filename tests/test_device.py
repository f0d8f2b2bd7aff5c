from switchboard.models import device


def test_cpu_forced(monkeypatch):
    device.detect.cache_clear()
    monkeypatch.setenv("SWITCHBOARD_DEVICE", "cpu")
    info = device.detect()
    assert info.ctranslate2 == "cpu" and info.onnx_providers == ("CPUExecutionProvider",)
    device.detect.cache_clear()


def test_auto_matches_the_runtimes():
    import ctranslate2

    device.detect.cache_clear()
    info = device.detect()
    assert info.has_cuda == (ctranslate2.get_cuda_device_count() > 0)
