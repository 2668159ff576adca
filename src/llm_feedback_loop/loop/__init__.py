"""The closed loop: generate answers with the active version, collect feedback through the service, export,
train, evaluate on an objective's held-out prompts, promote if better; round after round."""
