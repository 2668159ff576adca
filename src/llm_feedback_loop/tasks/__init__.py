"""The annotation queue: prompts loaded in batches, each judged by K annotators, with their agreement."""
