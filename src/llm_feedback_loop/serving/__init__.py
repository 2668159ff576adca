"""Serving: the generation engine (continuous batching) and the OpenAI-compatible inference server."""
