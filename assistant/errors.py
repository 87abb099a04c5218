"""Errors a user can cause: a code and a message in English and Japanese, never a traceback."""

from __future__ import annotations


class UserError(Exception):
    """An error caused by input; `code` is stable, messages are shown to the user as they are."""

    status = 400

    def __init__(self, code: str, message: str, message_ja: str, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.message_ja = message_ja
        if status is not None:
            self.status = status

    def message_for(self, language: str) -> str:
        return self.message_ja if language == "ja" else self.message

    def to_json(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message, "message_ja": self.message_ja}}


class ServiceUnavailable(UserError):
    """A backing service (Chroma server, model server) cannot be reached."""

    status = 503
