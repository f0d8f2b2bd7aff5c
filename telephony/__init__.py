"""The edges of a call: audio sources and sinks, codecs, resampling, framing.

Everything inside the pipeline is 16 kHz mono signed 16-bit in 20 ms frames; conversion
from whatever arrives (files today; SIP RTP G.711 and WebRTC Opus in later work) happens
here and nowhere else.
"""
