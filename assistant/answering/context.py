"""What a passage sentence means only with, read from the roles stored with its chunk.

A list item ("• 限定的") says little without its list's label ("米国"), a table row without its header
row; the document's title and the section place any sentence. The answerer reads the label with the
sentence when scoring it and names it in the answer; a scorer that reads whole contexts gets them from
`SentenceContext.text`. Nothing here parses the passage's text: the roles were fixed at ingestion
(`text.structure`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from assistant.text.normalize import single_spaced
from assistant.types import Passage, Role


@dataclass(frozen=True)
class SentenceContext:
    """The title, section and role of the line a sentence stands on."""

    title: str
    section: str
    role: Role

    @property
    def label(self) -> str:
        """The list's lead-in or the table's header row; "" for running text."""
        return self.role.label

    def text(self) -> str:
        """"title / section / label", each part once: a sentence's context for display or a scorer's input."""
        parts: list[str] = []
        for part in (self.title, self.section, self.label):
            flat = single_spaced(part)
            if flat and flat not in parts:
                parts.append(flat)
        return " / ".join(parts)


def passage_roles(passage: Passage) -> list[Role]:
    """The passage's stored roles. A passage made outside the index (a test's, an evaluation's raw
    paragraph) has none stored: they are derived from its text once, by the rules ingestion uses."""
    if passage.roles is None:
        from assistant.text.structure import roles_from_text

        passage.roles = roles_from_text(passage.text, passage.section, passage.title)
    return passage.roles


def role_at(roles: Sequence[Role], start: int, end: int) -> Role:
    """The role of the line `[start, end)` stands on (a sentence never spans two lines); running text
    where no line is known."""
    for role in roles:
        if role.start <= start < role.end or (start == end == role.start):
            return role
    return Role(start, end, "sentence")


def sentence_context(passage: Passage, start: int, end: int) -> SentenceContext:
    """The context of `passage.text[start:end]`: its document's title, its section, and its line's role."""
    return SentenceContext(passage.title, passage.section, role_at(passage_roles(passage), start, end))
