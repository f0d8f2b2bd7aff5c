"""SIP signalling and RTP media for Switchboard (issue #8).

Signalling is sipua's transport, transaction and dialog layers with the few fixes a call
centre needs (see ``transport.py`` and ``transaction.py``); media, SDP, DTMF, digest
authentication and the registrar are small modules here because sipua's aiortc-based
``Call`` is built for WebRTC (ICE, no telephone-event, no 488, no re-INVITE). The
reasons are in docs/architecture.md, section "SIP".
"""
