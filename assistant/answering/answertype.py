"""What a question asks for (a date, a number, a name) and whether a sentence supplies one.

A question that asks "when", "how many" or "who" is answered only by a sentence that carries a date,
a number or a name the question does not already contain. The extractive answerer prefers such
sentences; when a question asks for a date or a number and no quote gives one, the answer says that
the documents do not give it instead of quoting a passage that only looks like an answer. Names are
only preferred, never required: kanji personal names carry no mark to find them by.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

from assistant.text.lang import has_japanese

TYPES = ("date", "number", "name", "place")

# 数十 and 数百 are numbers; 数回 and 複数回 ("several times") are not.
_NUM = r"(?:[0-9]+(?:[.,][0-9]+)*|[一二三四五六七八九十百千万億兆両]+|数[十百千万億]+)"
_COUNTERS = (
    "人", "名", "回", "度", "個", "件", "台", "本", "枚", "冊", "頭", "匹", "羽", "隻", "機", "社", "校", "軒", "棟",
    "歳", "才", "倍", "割", "%", "パーセント", "℃", "円", "ドル", "ユーロ", "ルーブル", "フリヴニャ", "キロ", "メートル",
    "トン", "リットル", "km", "m", "kg", "か国", "カ国", "ヶ国", "ケ国", "か所", "カ所", "ヶ所", "州", "都市", "位", "票",
    "席", "議席", "日", "日間", "週", "週間", "か月", "カ月", "ヶ月", "ケ月", "か月間", "カ月間", "ヶ月間", "月", "年",
    "年間", "時間", "分", "秒", "世紀",
)
_COUNTER_RE = "|".join(sorted((re.escape(c) for c in _COUNTERS), key=len, reverse=True))

_ASK = {
    "date": re.compile(
        r"いつ(?!も|でも|か)|何(?:日|月|年|時|曜|世紀|年代|時代)(?!も|間)|"
        r"(?:時期|日程|日時|日付|期日|期限)(?:は|を)?(?:いつ)?[？?。]?$|"
        r"\bwhen (?:did|was|were|is|are|does|do|will|would|could|can|has|have|had|should)\b|\bwhen\s*\?|"
        r"(?:since|until|till) when|what (?:date|day|year|month|time|century|decade)|"
        r"which (?:date|day|year|month|century)",
        re.IGNORECASE),
    "number": re.compile(
        r"どのくらい|どれくらい|どれほど|どれだけ|いくつ(?!か)|いくら(?!でも|か)|"
        r"何(?:" + _COUNTER_RE + r")(?!も)|何パーセント|何割|"
        r"(?:回数|人数|件数|総数|割合|比率|税率|金利|利率)(?:は|を)?[？?。]?$|"
        r"how (?:many|much|long|often|far|old|large|big|high|tall|fast)|"
        r"what (?:percentage|share|proportion|fraction|number|rate|amount|size)|\bwhat (?:\w+ )?rate\b|"
        # "What is the current interest rate …", "What was the population of …": a figure is the answer.
        r"\bwhat(?:'s| is| was| are| were| will be| would be) (?:the |its |their |his |her |this |that )?"
        r"(?:[\w'-]+ ){0,3}?(?:rates?|percentages?|prices?|costs?|amount|proportion|population|budget|salary|wages?)\b",
        re.IGNORECASE),
    "name": re.compile(r"誰|だれ|どなた|何者|(?:名前|氏名)(?:は|を)?[？?。]?$|\bwho\b|\bwhom\b|\bwhose\b",
                       re.IGNORECASE),
    # "どこか。" ends a question; "どこかで" / "どこも" are not asking.
    "place": re.compile(
        r"どこ(?!か[でにへのらがを]|も|でも)|何処|どの(?:国|都市|地域|地方|場所|町|村|州|県|島|川|山|港|大陸|半島|海)|"
        r"何(?:県|国|州|市)(?!間)|(?:場所|開催地|所在地|出身地)(?:は|を)?[？?。]?$|"
        r"\bwhere\b|\b(?:which|what|in what) (?:countr(?:y|ies)|cit(?:y|ies)|states?|regions?|places?|towns?|continents?|islands?|provinces?|areas?)",
        re.IGNORECASE),
}
# The counter a Japanese question asks a number of: 何回 -> 回, 何カ国 -> カ国.
_ASKED_COUNTER = re.compile(r"何(" + _COUNTER_RE + r")(?!も)")
_COUNTER_NOUN = {"回数": "回", "人数": "人", "件数": "件"}

_DATE = re.compile(
    r"[0-9]+\s*(?:年|月|日|時|世紀|年代)|[一二三四五六七八九十百千]+(?:年|月|日|世紀)|"
    # A time told by an event: "共和国成立後", "終戦前", "独立時" (not "前線", "時間": the word ends there).
    r"[\u4e00-\u9fff]{2,}(?:後|前|時)(?![\u4e00-\u9fff])|"
    r"(?:明治|大正|昭和|平成|令和|江戸|室町|鎌倉|平安|奈良|戦国|安土桃山)(?:時代|[0-9元]+年)?|"
    r"今年|昨年|去年|来年|先月|今月|来月|先週|今週|来週|昨日|今日|明日|[月火水木金土日]曜|"
    r"(?<![0-9.,])(?:1[0-9]|20)[0-9]{2}(?![0-9万億千百人名円ドル%]|[.,][0-9])|\b(?:January|February|March|April|May|June|July|August|September|October|"
    r"November|December)\b|紀元前|時代|世紀|上旬|中旬|下旬|年末|年初|月末|月初|"
    r"午前|午後|早朝|深夜|夜間|日中|夕方|[春夏秋冬]季|[春夏秋冬]に|以降|以後|以前|直後|直前|当時|"
    r"\b(?:spring|summer|autumn|winter|morning|evening|night)\b|"
    r"\b[0-9]{1,2}(?::[0-9]{2})?\s*(?:a\.m\.|p\.m\.|am\b|pm\b)|\b[0-9]{1,2}:[0-9]{2}\b|\b(?:noon|midnight)\b|o'clock|"
    r"\b(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|weekdays?|weekends?)\b", re.IGNORECASE)
_NUMBER = re.compile(_NUM + r"\s*(?:" + _COUNTER_RE + r")|[0-9]+(?:[.,][0-9]+)*|半分|半数|過半数|"
                     r"\b(?:one|two|three|four|five|six|seven|eight|nine|ten|hundred|thousand|million|billion)\b",
                     re.IGNORECASE)
_NAME = re.compile(
    r"[ァ-ヴ][ァ-ヴー・]{1,}|[\u4e00-\u9fff]{1,4}(?:氏|さん|様|首相|大統領|長官|報道官|大臣|議長|知事|市長|社長|会長|"
    r"教授|博士|選手|監督|天皇|将軍|皇帝|王)|「[^」]{1,20}」|\b[A-Z][a-zA-Z]+(?: [A-Z][a-zA-Z]+)*\b")


def fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


def asked_types(question: str) -> list[str]:
    """The types the question asks for, most specific first ("何年" is a date, not a number)."""
    q = fold(question)
    return [t for t in TYPES if _ASK[t].search(q) and not (t == "number" and _only_date_counter(q))]


def _only_date_counter(q: str) -> bool:
    """何年 / 何月 / 何日 ask for a date; "何年間" or "how long" ask for a number."""
    counters = [m.group(1) for m in _ASKED_COUNTER.finditer(q)]
    return bool(counters) and all(c in ("年", "月", "日") for c in counters) and not re.search(
        r"どのくらい|どれくらい|how (?:many|much|long)|何年間|何日間|何か月|何カ月|何ヶ月", q)


# Counters of things counted; a question asking 何メートル or 何円 is answered by any amount.
_COUNTS = frozenset(["人", "名", "回", "度", "個", "件", "台", "本", "枚", "冊", "頭", "匹", "羽", "隻", "機", "社", "校",
                     "軒", "棟", "か国", "カ国", "ヶ国", "ケ国", "か所", "カ所", "ヶ所", "州", "都市", "位", "票", "席",
                     "議席", "日間", "週", "週間", "か月", "カ月", "ヶ月", "ケ月", "か月間", "カ月間", "ヶ月間", "年間",
                     "時間", "世紀", "歳", "才", "倍", "割"])
# Counters that stand for each other in answers.
_SAME = {"人": "(?:人|名)", "名": "(?:人|名)", "度": "(?:度|℃|°c)", "回": "(?:回|度)",
         "か国": "(?:か国|カ国|ヶ国|ケ国)", "カ国": "(?:か国|カ国|ヶ国|ケ国)", "ヶ国": "(?:か国|カ国|ヶ国|ケ国)",
         "か月": "(?:か月|カ月|ヶ月|ケ月)", "カ月": "(?:か月|カ月|ヶ月|ケ月)", "ヶ月": "(?:か月|カ月|ヶ月|ケ月)"}


# What an English question counts ("how many troops"), as the Japanese counter a Japanese text counts
# it with ("3万人"): people, times, countries, companies.
_EN_COUNTED = {
    "人": r"people|persons|troops|soldiers|members|employees|workers|staff|students|residents|citizens|refugees"
          r"|victims|casualties|deaths|children|women|men|players|participants|visitors|tourists|officials|civilians",
    "回": r"times|rounds|occasions",
    "か国": r"countries|nations",
    "社": r"companies|firms",
}
_ASKED_EN = re.compile(r"how many (?:[a-z-]+ ){0,2}?(" + "|".join(_EN_COUNTED.values()) + r")\b")


@lru_cache(maxsize=1024)  # asked again for every sentence scored against the question
def asked_counter(question: str) -> str | None:
    """The unit a Japanese question counts in, if it names one (何人 -> 人); None for amounts and dates.
    An English question's counted noun gives the counter too ("how many troops" -> 人)."""
    q = fold(question)
    m = _ASKED_COUNTER.search(q)
    if m:
        return m.group(1) if m.group(1) in _COUNTS else None
    for noun, counter in _COUNTER_NOUN.items():
        if noun in q:
            return counter
    m = _ASKED_EN.search(q)
    if m:
        return next(c for c, nouns in _EN_COUNTED.items() if re.fullmatch(nouns, m.group(1)))
    return None


# A proportion is asked for: only a percentage, a ratio or a share answers it.
_ASK_PROPORTION = re.compile(r"割合|比率|税率|金利|利率|何割|何パーセント|何%|何\s*%|percentage|\bshare\b|proportion|fraction|"
                             r"(?<!exchange )\brate\b", re.IGNORECASE)
_PROPORTION = re.compile(_NUM + r"\s*(?:%|パーセント|割)|" + _NUM + r"\s*分の\s*" + _NUM + r"|半数|半分|[0-9]+\s*percent",
                         re.IGNORECASE)
# A sum of money is asked for: only an amount in a currency answers it (or a share of one: "全GDPのいくら
# を占めるか" -> "3分の2"). On the shared data 15 of the 17 such questions have a sum for their answer.
_ASK_MONEY = re.compile(r"いくら(?!でも|か)|価格|値段|費用|予算|金額|給与|賃金|給料|年収|運賃|料金|\bprices?\b|\bcosts?\b|"
                        r"\bbudgets?\b|\bsalar(?:y|ies)\b|\bwages?\b|how much money|\bfares?\b|\bfees?\b", re.IGNORECASE)
_MONEY = re.compile(_NUM + r"\s*(?:万|億|兆)?\s*(?:円|ドル|ユーロ|元|ウォン|ポンド|ルーブル|フラン|ルピー|レアル|ペソ|フリヴニャ|セント|銭)|"
                    r"[$¥€£]\s*[0-9]|\b(?:USD|JPY|EUR|GBP|CNY)\s*[0-9]|"
                    r"[0-9]\s*(?:(?:thousand|million|billion|trillion|bn|m)\s+)?"
                    r"(?:dollars|yen|euros?|pounds|cents|yuan|rubles|roubles|won|rupees|USD|JPY|EUR|GBP|CNY)\b",
                    re.IGNORECASE)
_PEOPLE = re.compile(r"[ァ-ヴ][ァ-ヴー]+人")
_IS_DATE = re.compile(r"[0-9]+\s*[年月日]|[一二三四五六七八九十百千]+[年月日]")
# A duration is asked for ("どのくらいの期間", "期間は？"), not merely named ("採用後一定期間在籍した場合、…").
_ASK_DURATION = re.compile(
    r"(?:どのくらい|どれくらい|どれほど|どれだけ)の(?:期間|長さ|間)|(?:期間|長さ)(?:は|を|が)?(?:どのくらい|どれくらい|どれほど|"
    r"どれだけ|何)|(?:期間|長さ)(?:は|を)?[？?。]?$|how long|何年間|何日間|何か月|何カ月|何ヶ月|何週間", re.IGNORECASE)


def supplies(kind: str, sentence: str, question: str) -> bool:
    """Whether the sentence carries a `kind` the question does not already contain."""
    s, q = fold(sentence), fold(question)
    if kind == "number":
        counter = asked_counter(question)
        if counter is not None and not has_japanese(s):
            counter = None  # an English text counts in words ("5,000 Ukrainian troops"): any figure
        if counter == "人" and any(m.group(0) not in q for m in _PEOPLE.finditer(s)):
            return True  # 何人 is also "which people" (なにじん): "ゲルマン人が侵入した" answers it
        if counter is not None:
            unit = _SAME.get(counter, re.escape(fold(counter)))
            pattern = re.compile(_NUM + r"\s*" + unit)
            return any(m.group(0) not in q for m in pattern.finditer(s))
        if _ASK_PROPORTION.search(q):
            return any(m.group(0) not in q for m in _PROPORTION.finditer(s))
        if _ASK_MONEY.search(q):
            return any(m.group(0) not in q for m in [*_MONEY.finditer(s), *_PROPORTION.finditer(s)])
        # A date ("19日") is not the count or amount a question asks for, unless it asks how long.
        durations = bool(_ASK_DURATION.search(q))
        return any(m.group(0) not in q and (durations or not _IS_DATE.fullmatch(m.group(0)))
                   for m in _NUMBER.finditer(s))
    if kind == "date":
        return any(m.group(0) not in q for m in _DATE.finditer(s))
    if kind == "place" and has_japanese(s):
        return any(fold(p) not in q for p in proper_names(sentence, "地名"))
    if kind == "name" and has_japanese(s) and any(fold(p) not in q for p in proper_names(sentence, "人名")):
        return True
    # Names keep their case: a capital letter is part of what marks a Latin name.
    return any(fold(m.group(0)) not in q for m in _NAME.finditer(unicodedata.normalize("NFKC", sentence)))


# "どこで開かれたか" asks for the place where something happened, which a sentence marks by its case
# particle ("アラスカでの会談"): a place it names otherwise ("クリミアの割譲") is not that answer.
_ASKED_CASE = re.compile(r"(?:どこ|何処)(で(?!す|し|あ)|に|へ|から|まで)")  # "どこですか" asks no case
_PLACE_CASE = {
    "で": re.compile(r"で|にて|において|における"),
    "に": re.compile(r"に|へ"),
    "へ": re.compile(r"へ|に"),
    "から": re.compile(r"から|より"),
    "まで": re.compile(r"まで"),
}
# Nouns and suffixes that may stand between a place name and its particle ("ザポリージャ州で"), and
# "など" ("タイなどに輸出").
_PLACE_TAIL = 2
_PLACE_AND_SO_ON = frozenset({"など", "等", "ら"})


def case_marked_place(sentence: str, question: str) -> bool:
    """Whether a Japanese question asks "どこで/どこに/どこから…" and the sentence names a place the
    question does not, marked by that particle: "アラスカでの会談" answers "どこで行われたか"."""
    m = _ASKED_CASE.search(fold(question))
    if m is None or not has_japanese(sentence):
        return False
    q, marked = fold(question), _PLACE_CASE[m.group(1)]
    return any(fold(p) not in q and marked.match(after) for p, after in place_names(sentence))


def place_names(sentence: str) -> tuple[tuple[str, str], ...]:
    """The places a Japanese sentence names (`proper_names` 地名), each with the text after the nouns
    or suffixes that complete it ("アラスカ" -> "での会談…")."""
    return tuple((name, after) for kind, name, after in _names(sentence) if kind == "地名")


def proper_names(sentence: str, kind: str) -> tuple[str, ...]:
    """The names of a Japanese sentence that its tokenizer's dictionary tags as `kind`: 地名 for
    places (アラスカ, 東京), 人名 for people (田中, プーチン)."""
    return tuple(name for k, name, _ in _names(sentence) if k == kind)


@lru_cache(maxsize=20_000)  # the same sentences are scored for many questions
def _names(sentence: str) -> tuple[tuple[str, str, str], ...]:
    """(kind, name, the text after it and the nouns or suffixes that complete it) for each proper name."""
    from sudachipy import SplitMode

    from assistant.keyword.tokenize import _thread_tokenizer

    morphemes = list(_thread_tokenizer().tokenize(sentence, SplitMode.C))
    found: list[tuple[str, str, str]] = []
    for i, m in enumerate(morphemes):
        pos = m.part_of_speech()
        if pos[1] != "固有名詞":
            continue
        j = i + 1
        while j < len(morphemes) and j - i <= _PLACE_TAIL and (morphemes[j].part_of_speech()[0] in ("名詞", "接尾辞")
                                                              or morphemes[j].surface() in _PLACE_AND_SO_ON):
            j += 1
        found.append((pos[2], m.surface(), sentence[morphemes[j].begin():] if j < len(morphemes) else ""))
    return tuple(found)


# The types a refusal may rest on: dates and numbers are found reliably; names are not (kanji names
# carry no mark), so a missing name never refuses by itself.
VETO_TYPES = ("date", "number")


# Degree words ask "how much" in a way a sentence may answer without a figure ("the gap is large"):
# they make numbers preferred, not required, unless the question also names what is counted.
_DEGREE = re.compile(r"どのくらい|どれくらい|どれほど|どれだけ|how much|how far", re.IGNORECASE)


# A year as a question names it: "2030年度", "in 2030"; not part of a longer number ("12030").
_YEAR = re.compile(r"(?<![0-9])(1[5-9][0-9]{2}|20[0-9]{2})(?![0-9])")


def unmatched_year(question: str, quotes: list[str], headings: Sequence[str] = ()) -> str | None:
    """A year the question names when the quotes, or the headings they stand under, name other years
    but never it: a sentence about the 2040 target does not answer a question about the 2030 one, nor
    "年間配当は60円" under "2025年度決算の概要" one about 2026. Quotes and headings that name no year at
    all ("同年6月に…") say nothing either way, so they never veto: on the shared data one answerable
    question in ten names a year its answer sentence does not repeat."""
    asked = list(dict.fromkeys(_YEAR.findall(fold(question))))
    if not asked:
        return None
    given = {y for q in [*quotes, *headings] for y in _YEAR.findall(fold(q))}
    return asked[0] if given and not given.intersection(asked) else None


# Quantities a question may ask for by name, each with the words that name it in a question and the
# words by which a sentence (or the heading it stands under) speaks of it, in Japanese and English. A
# figure about something else does not answer: "9%減の158億円" is no interest rate, an investment sum no
# dividend. Broad on the side of the evidence ("益" for 利益, "度" for a temperature), since a miss refuses.
_MEASURES = {
    "interest rate": ("金利", r"金利|利率|利子|利回り|interest rates?|\byields?\b",
                      r"金利|利率|利子|利回り|利上げ|利下げ|interest|yield"),
    "population": ("人口", r"人口|\bpopulation\b", r"人口|住民|居住|人が(?:住|暮ら)|population|inhabitants|residents|people live"),
    "unemployment": ("失業率", r"失業|unemployment|jobless", r"失業|unemploy|jobless"),
    "inflation": ("物価上昇率", r"インフレ|物価|inflation|consumer prices|\bcpi\b", r"インフレ|物価|inflation|\bcpi\b|consumer prices"),
    "gdp": ("GDP", r"\bgdp\b|国内総生産|gross domestic product", r"gdp|国内総生産|gross domestic|経済規模"),
    "exchange rate": ("為替レート", r"為替|exchange rates?|円相場", r"為替|exchange|円相場|円安|円高|ドル円|[0-9]+円台"),
    "dividend": ("配当", r"配当|dividends?", r"配当|dividend"),
    "share price": ("株価", r"株価|stock prices?|share prices?|日経平均|\bnikkei\b", r"株価|stock|share price|日経平均|nikkei|終値|topix"),
    "tax": ("税", r"税率|税金|\btax(?:es)?\b", r"税|tax|levy|dut(?:y|ies)"),
    "wage": ("賃金", r"賃金|給与|給料|年収|月給|時給|\bwages?\b|\bsalar(?:y|ies)\b",
             r"賃金|給与|給料|年収|時給|月給|報酬|収入|wage|salar|\bpay|earn|income"),
    "profit": ("利益", r"利益|\bprofits?\b|\bearnings\b", r"益|profit|earnings|income|黒字|赤字"),
    "revenue": ("売上", r"売上|売り上げ|\brevenues?\b|\bsales\b|\bturnover\b", r"売上|売り上げ|revenue|sales|turnover|収入|収益"),
    "birth rate": ("出生率", r"出生率|birth ?rates?|fertility", r"出生|birth|fertility|出産"),
    "weather": ("天気や気温", r"天気|気温|降水|\bweather\b|temperature", r"天気|気温|降水|weather|temperature|℃|°|度|雨|晴|雪|曇"),
}
_MEASURE_RES = {k: (re.compile(q), re.compile(e)) for k, (_, q, e) in _MEASURES.items()}


def measure_name(kind: str, language: str) -> str:
    """How a refusal names the quantity: "interest rate", "金利"."""
    return _MEASURES[kind][0] if language == "ja" and kind in _MEASURES else kind


# A why- or how-question names a quantity as its topic ("なぜ売上が減ったのか"), and a question asking
# for a date, a name or a place names one in passing ("人口が少ない国はどこか").
_ASK_REASON = re.compile(r"なぜ|何故|どうして|理由|原因|要因|背景|\bwhy\b|\bhow (?:did|does|do|is|was|were|will|can|could)\b")


def asked_measures(question: str) -> list[str]:
    """The quantities the question asks for by name (`_MEASURES`), unless it asks why or how, or for a
    date, a name or a place, which only mentions them."""
    q = fold(question)
    if _ASK_REASON.search(q) or any(t in ("date", "name", "place") for t in asked_types(question)):
        return []
    return [kind for kind, (asked, _) in _MEASURE_RES.items() if asked.search(q)]


def names_other_measure(measures: Sequence[str], sentence: str) -> bool:
    """Whether a sentence names another quantity by its name and none of those asked for: "第1四半期の売上
    高は842億円" is about sales, not the operating profit "第1四半期の営業利益はいくらか" asks for. A
    sentence that names none ("海外向けは6%減の210億円", its topic left to the one before) is not."""
    if not measures:  # most questions: nothing to fold
        return False
    s = fold(sentence)
    if any(_MEASURE_RES[k][1].search(s) for k in measures):
        return False
    return any(asked.search(s) for kind, (asked, _) in _MEASURE_RES.items() if kind not in measures)


def unnamed_measure(question: str, quotes: list[str], headings: Sequence[str] = (), context: Sequence[str] = ()
                    ) -> str | None:
    """The quantity the question asks for by name (an interest rate, a dividend, the population) when
    neither the quotes, the headings they stand under, nor the `context` they are read in (their
    passages) speak of it: Japanese leaves a sentence's topic to the one before ("海外向けは6%減の210億
    円" after "売上高は…"). On the shared data (5,096 questions) the answer sentence or its article's
    title names the quantity for every one of the 22 questions that ask for a figure by such a name,
    and for 71 of the 78 that name one at all; the other 7 ask for a place or a name."""
    given = [fold(t) for t in [*quotes, *headings, *context]]
    return next((k for k in asked_measures(question) if not any(_MEASURE_RES[k][1].search(t) for t in given)), None)


def veto(question: str, quotes: list[str], headings: Sequence[str] = (), context: Sequence[str] = ()
         ) -> str | None:
    """Why the quotes cannot answer the question whatever their scores: the kind of detail it asks for
    and none gives ("date", "number"), "year 2030" for a year the quotes (and `headings`, the titles
    and sections they stand under) do not speak of, or "measure interest rate" for a quantity the question
    asks for by name that neither they nor their passages (`context`) mention."""
    kind = absent(question, quotes)
    if kind:
        return kind
    year = unmatched_year(question, quotes, headings)
    if year:
        return f"year {year}"
    measure = unnamed_measure(question, quotes, headings, context)
    return f"measure {measure}" if measure else None


def absent(question: str, quotes: list[str]) -> str | None:
    """The date or number type the question asks for when none of `quotes` gives one, else None."""
    for kind in asked_types(question):
        if kind not in VETO_TYPES or any(supplies(kind, q, question) for q in quotes):
            continue
        if kind == "number" and not _ASK["number"].search(_DEGREE.sub(" ", fold(question))) \
                and not _ASK_DURATION.search(fold(question)):
            continue
        return kind
    return None
