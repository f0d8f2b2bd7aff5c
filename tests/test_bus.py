from switchboard.pipeline.bus import EventBus
from switchboard.pipeline.events import TranscriptFinal


def test_fanout_in_order_and_a_broken_subscriber_is_contained():
    bus = EventBus()
    seen = []

    def broken(event):
        raise RuntimeError("ui bug")

    bus.subscribe(broken)
    bus.subscribe(seen.append)
    events = [TranscriptFinal(call_id="c", leg="caller", t_audio=i, text=str(i)) for i in range(3)]
    for e in events:
        bus.publish(e)
    assert seen == events and bus.history == events
    assert events[0].to_dict()["kind"] == "transcript_final"
