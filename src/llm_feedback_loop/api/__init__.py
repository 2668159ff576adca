"""The HTTP entry points: the feedback service (the original project's endpoints and the versioned `/v1` API)
and serve-model's OpenAI-compatible inference server (`model_server.py`)."""
