"""The web side: agent coach view, supervisor board and browser softphone.

Empty until the coach and supervisor issues: those pages subscribe to a call's
:class:`pipeline.bus.EventBus` and read history from :class:`pipeline.store.CallStore`.
"""
