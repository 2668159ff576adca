"""Why feedback cannot be stored as sent, for the caller to fix: no HTTP here, the API maps it (api/errors.py)."""

from __future__ import annotations


class FeedbackError(Exception):
    """Feedback refused with a sentence that says what to change. `status_code` is the HTTP status the API
    answers it with: 422 (the payload names something wrong), 404 (it names a row that does not exist), 409."""

    def __init__(self, message: str, status_code: int = 422) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
