"""One tick of the loop and the executors: the engine, containment of failures, wiring adapters from settings."""
