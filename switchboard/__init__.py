"""Switchboard: an open real-time voice call-center pipeline."""

__version__ = "0.1.0"
