"""Models: the one loader used by chat, training, evaluation and serving; the tiny test model; the registry."""
