"""Serving: the generation engine (continuous batching) and the model slot that follows the registry. The
OpenAI-compatible inference server over them is `api/model_server.py`."""
