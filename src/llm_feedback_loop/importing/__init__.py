"""Import feedback from the original project (its JSON payloads, or a MongoDB `mongoexport`)."""
