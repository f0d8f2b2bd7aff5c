"""Helpers shared by tests."""


def generous_budgets(settings):
    """Budgets no loaded CI machine can breach: for tests of behaviour, not of speed.

    The anger score's wait for the ASR's voice embedding follows its budget, so it goes
    too: a slow decode must not turn a test's scores into voice-only ones.
    """
    for name, budget in settings.budgets.budgets.items():
        settings.budgets.budgets[name] = type(budget)(name, budget.stage, 1e9)
    settings.prosody.embedding_wait_ms = 1e9
    return settings
