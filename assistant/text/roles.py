"""A document's author, as questions ask for one and as bylines name one.

"このメモを書いたのは誰ですか", "執筆者は？" and "Who wrote this?" share no word with the byline that
answers them ("作成：エネルギー調査室 佐藤", "文責：…", "Prepared by …"). Sentence scoring gives every
author word one shared token (`AUTHOR_TOKEN`), and keyword search looks for the byline words
(`BYLINE_WORDS`) when a question asks for the author.
"""

from __future__ import annotations

import re

AUTHOR_WORDS = re.compile(r"執筆者?|筆者|著者|作成者|作成\s*[：:]|文責|書き手|書いた(?:人|者|の)|\bauthors?\b|\bwriters?\b|"
                          r"\bwho wrote\b|\bwritten by\b|\bprepared by\b", re.IGNORECASE)
AUTHOR_TOKEN = "執筆者"
# The words bylines use, searched for as one alternative group (their weights shared).
BYLINE_WORDS = ("作成", "執筆", "文責", "著者", "筆者", "author", "prepared by", "written by")


def asks_author(text: str) -> bool:
    """Whether the text names a document's author (a question) or a byline (a sentence)."""
    return AUTHOR_WORDS.search(text) is not None
