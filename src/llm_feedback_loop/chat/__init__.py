"""Chat: answers from the local model or an OpenAI-compatible endpoint, each logged as a generation."""
