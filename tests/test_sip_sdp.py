"""SDP offer/answer: parsing real-world offers, codec choice, 488, directions."""

from __future__ import annotations

import pytest
from switchboard.telephony.sip import sdp

SIPP_OFFER = (
    "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
    "t=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)
BARESIP_LIKE = (
    "v=0\r\no=- 1 2 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n"
    "m=audio 31000 RTP/AVP 9 8 0 96\r\na=rtpmap:9 G722/8000\r\na=rtpmap:96 telephone-event/8000\r\n"
    "a=fmtp:96 0-15\r\na=rtcp:31005\r\na=sendrecv\r\n"
)


def test_parse_sipp_offer():
    media = sdp.parse(SIPP_OFFER)
    assert (media.host, media.port, media.direction) == ("127.0.0.1", 6000, "sendrecv")
    assert media.codecs == [sdp.Codec(0, "PCMU", 8000)]
    assert media.telephone_event_pt is None


def test_static_payload_types_without_rtpmap_and_telephone_event_pt_from_offer():
    media = sdp.parse(BARESIP_LIKE)
    assert [c.pt for c in media.codecs] == [9, 8, 0, 96]
    assert media.codecs[1] == sdp.Codec(8, "PCMA", 8000)
    assert media.telephone_event_pt == 96
    assert media.rtcp_port == 31005
    chosen = sdp.negotiate(media)
    # The offerer's order wins among codecs we speak: G722 is skipped, PCMA comes first.
    assert chosen.codec.name == "PCMA" and chosen.telephone_event_pt == 96
    answer = sdp.parse(
        sdp.build(
            host="127.0.0.1", port=4000, codecs=sdp.answer_codecs(chosen), direction="sendrecv"
        )
    )
    assert [c.pt for c in answer.codecs] == [8, 96]
    assert answer.telephone_event_pt == 96


def test_no_common_codec_is_488_material():
    offer = SIPP_OFFER.replace("RTP/AVP 0", "RTP/AVP 18").replace("0 PCMU", "18 G729")
    with pytest.raises(sdp.NoCommonCodec):
        sdp.negotiate(sdp.parse(offer))


@pytest.mark.parametrize(
    "body",
    [
        "",
        "garbage",
        "v=0\r\nm=audio x RTP/AVP 0\r\n",
        "v=0\r\ns=-\r\nt=0 0\r\nm=audio 5 RTP/AVP 0\r\n",
        "v=0\r\nc=IN IP4 1.2.3.4\r\nm=video 5 RTP/AVP 96\r\n",
    ],
)
def test_unreadable_bodies_raise_sdp_error(body):
    with pytest.raises(sdp.SdpError):
        sdp.parse(body)


def test_directions_and_hold():
    held = sdp.parse(SIPP_OFFER + "a=sendonly\r\n")
    assert held.direction == "sendonly" and held.sends and not held.receives
    assert sdp.answer_direction("sendonly") == "recvonly"
    assert sdp.answer_direction("inactive") == "inactive"
    assert sdp.answer_direction("recvonly") == "sendonly"
    session_level = SIPP_OFFER.replace("t=0 0\r\n", "t=0 0\r\na=inactive\r\n")
    assert sdp.parse(session_level).direction == "inactive"


def test_offer_lists_pcmu_pcma_and_events():
    text = sdp.build(host="127.0.0.1", port=4000, codecs=sdp.offer_codecs(), version=3)
    assert "m=audio 4000 RTP/AVP 0 8 101" in text
    assert "a=fmtp:101 0-16" in text and " 3 IN IP4 127.0.0.1" in text


def test_events_at_8_khz_are_the_ones_used_and_directions_stay_per_stream():
    """A gateway that also offers telephone-event at 48 kHz (as WebRTC bridges do): the
    8 kHz events go with PCMU. A later video stream's direction is not the audio's."""
    offer = (
        "v=0\r\no=- 1 2 IN IP4 10.0.0.7\r\ns=-\r\nc=IN IP4 10.0.0.7\r\nt=0 0\r\n"
        "m=audio 32000 RTP/AVP 0 110 101\r\na=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:110 telephone-event/48000\r\na=rtpmap:101 telephone-event/8000\r\n"
        "m=video 0 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\na=inactive\r\n"
    )
    media = sdp.parse(offer)
    assert media.telephone_event_pt == 101
    assert media.direction == "sendrecv"
    assert sdp.negotiate(media).telephone_event_pt == 101
