"""One pipecat frame processor per stage of the analysis graph."""
