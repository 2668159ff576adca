"""llm-feedback-loop: collect human feedback on LLM answers, turn it into training data, train, repeat."""

__version__ = "0.1.0"
