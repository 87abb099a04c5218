"""Errors a user can cause: a code and a message in English and Japanese, never a traceback."""

from __future__ import annotations

import re

# Control characters (but tab and line breaks), zero-width and bidirectional marks.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060\ufeff]")


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


INTERNAL_ERROR = UserError("internal_error", "Something went wrong on the server; the error has been logged.",
                           "サーバーでエラーが発生しました。エラーは記録されています。", status=500)


def check_question(question: str, max_chars: int) -> str:
    """Strips control characters; rejects empty and over-long questions with a bilingual message."""
    cleaned = _CONTROL_RE.sub("", question).strip()
    if not cleaned:
        raise UserError("empty_question", "Please type a question.", "質問を入力してください。")
    if len(cleaned) > max_chars:
        raise UserError(
            "question_too_long",
            f"The question is {len(cleaned)} characters long; the limit is {max_chars}.",
            f"質問が長すぎます（{len(cleaned)}文字）。上限は{max_chars}文字です。",
        )
    return cleaned
