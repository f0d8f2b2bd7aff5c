"""The streaming analysis graph: typed frames, one pipecat processor per stage, budgets,
events and the policy that turns understanding into replies."""
