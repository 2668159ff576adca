"""The FastAPI service: the original project's endpoints and the versioned `/v1` API."""
