"""The web pages annotators use, served by `llmfl serve` itself: plain HTML, CSS and JavaScript."""
