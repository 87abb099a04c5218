
"""What a question asks for, whether a quote gives it, and the refusal when no quote does."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.answering.answertype import (
    absent,
    asked_counter,
    asked_measures,
    asked_types,
    case_marked_place,
    names_other_measure,
    supplies,
    veto,
)
from assistant.answering.chain import make_pipeline
from tests.helpers import make_settings
from tests.test_answering import assert_valid, briefing_passages, make_retrieve


@pytest.mark.parametrize(("question", "types"), [
    ("会談はいつ開かれましたか。", ["date"]),
    ("徳川家康は何年に生まれた？", ["date"]),
    ("When did the talks begin?", ["date"]),
    ("交渉は何回行われましたか。", ["number"]),
    ("派遣された人数は？", ["number"]),
    ("何日間の停戦を求めたのか", ["number"]),
    ("How many troops would be sent?", ["number"]),
    ("What share of the territory does Russia control?", ["number"]),
    ("報道官は誰ですか。", ["name"]),
    ("Who briefed the European leaders?", ["name"]),
    ("首脳会談はどこで行われましたか？", ["place"]),
    ("梅雨がないのは北海道とどこか。", ["place"]),
    ("どの国が枠組みに参加するのか", ["place"]),
    ("Where was the summit held?", ["place"]),
    ("Which country did Putin name?", ["place"]),
    # Words that look like question words but ask nothing.
    ("何度も延期された制裁の対象は何か。", []),
    ("いつものように会談は非公開だったのか。", []),
    ("いくつかの欧州諸国が参加する枠組みとは何か。", []),
    ("1970年代に国有化が相次いだものとは？", []),
    ("When the talks failed, what did Russia do?", []),
    ("どこかで会談は開かれるのか。", []),
])
def test_asked_types(question: str, types: list[str]) -> None:
    assert asked_types(question) == types


def test_counted_units_must_match_and_equivalents_count() -> None:
    assert asked_counter("交渉は何回行われましたか。") == "回"
    assert asked_counter("何メートルか") is None  # an amount: any number answers it
    assert supplies("number", "交渉はこれまでに3回行われた。", "交渉は何回行われましたか。")
    assert not supplies("number", "交渉はこれまでに複数回行われた。", "交渉は何回行われましたか。")
    assert not supplies("number", "交渉は19日に行われた。", "交渉は何回行われましたか。")
    assert supplies("number", "監視団として3名を派遣した。", "派遣した人数は？")
    assert supplies("number", "沸点は30℃位までである。", "沸点は何度くらい？")
    assert supplies("number", "約2カ月で完成させた。", "どれほどの期間で完成させた？")
    assert supplies("number", "300年近く改良されていない。", "どれくらいの期間、改良されていないか？")


def test_an_english_question_counts_what_it_names() -> None:
    """"How many troops" over a Japanese text is answered by a count of people (3万人), not by any figure
    ("参加国の1つ"); over an English text, words count ("5,000 Ukrainian troops"), so any figure does."""
    q = "How many NATO troops would be sent to Ukraine under the European plan?"
    assert asked_counter(q) == "人" and asked_counter("How many times did they meet?") == "回"
    assert asked_counter("How many countries joined the pact?") == "か国" and asked_counter("How many were killed?") is None
    assert not supplies("number", "プーチン大統領は参加国の1つとして中国を挙げた", q)
    assert supplies("number", "欧州はNATO軍3万人の派遣を検討している", q)
    assert supplies("number", "Europe would send 5,000 Ukrainian troops.", q)
    assert absent(q, ["プーチン大統領は参加国の1つとして中国を挙げた"]) == "number"
    # A Japanese question over an English text: the count is written in words there too.
    assert supplies("number", "About 5,000 students are enrolled in the College.", "学生は何人在籍していますか")


def test_a_date_is_not_a_count_and_a_count_is_not_a_share() -> None:
    q = "How many NATO troops would be sent to Ukraine?"
    assert absent(q, ["19日にトランプ氏は欧州が第一の防衛線になるべきとした。"]) == "number"
    assert absent(q, ["欧州は1万人規模の部隊の派遣を検討している。"]) is None
    share = "What share of Ukraine's territory does Russia control?"
    assert absent(share, ["ロシアは4州の割譲を求めている。"]) == "number"
    assert absent(share, ["ロシアは領土の約2割を支配している。"]) is None
    assert absent(share, ["ロシアは領土の5分の1を支配している。"]) is None
    assert absent(share, ["会談は30分で終わった。"]) == "number"  # minutes are not a share


def test_dates_in_the_question_do_not_answer_it() -> None:
    q = "8月15日の会談のあと、次の会談はいつ開かれるか。"
    assert not supplies("date", "8月15日の会談では和平条件が話し合われた。", q)
    assert supplies("date", "次の会談は9月1日に開かれる予定だ。", q)
    assert not supplies("date", "人口は1852万人である。", "いつ創設されたか")
    assert supplies("date", "It was founded in 1852.", "When was it founded?")


def test_clock_times_and_weekdays_in_english_sentences_are_dates() -> None:
    q = "図書館は平日何時まで開いていますか"
    assert supplies("date", "It extends opening hours until 9 p.m. on weekdays.", q)
    assert supplies("date", "The meeting starts at 10:30.", "When does the meeting start?")
    assert supplies("date", "Talks resume on Monday.", "When do the talks resume?")
    assert not supplies("date", "The plan would cost 4.2 million dollars.", q)
    assert not supplies("date", "Version 2.10 was released.", "When was it released?")


def test_degree_words_prefer_a_figure_but_do_not_require_one() -> None:
    q = "領土について、両国の主張はどのくらい離れていますか。"
    assert asked_types(q) == ["number"]
    assert absent(q, ["両国の意見の隔たりは大きい。"]) is None
    assert absent("停戦はどれほどの期間続いたか", ["停戦はしばらく続いた。"]) == "number"  # a duration is a figure
    assert absent("How much did Russia gain?", ["ロシアは時間を得た。"]) is None


def test_a_time_told_by_an_event_answers_when() -> None:
    assert supplies("date", "しかし、人民共和国成立後、仏教は特別な保護を受けなくなった。", "仏教が保護を受けなくなったのはいつ？")
    assert supplies("date", "終戦前の旧憲法の下では、労働者の権利は認められていなかった。", "権利が認められなかったのはいつ？")
    assert not supplies("date", "現在の前線を踏まえた領土交換を議論する。", "交渉はいつ始まるか。")  # 前線 is no time
    assert not supplies("date", "協議には長い時間がかかった。", "協議はいつ終わったか。")


def test_a_duration_named_in_passing_is_not_asked_for() -> None:
    q = "採用後一定期間在籍した場合、紹介事業者に支払う報酬の相場はどれくらいか。"
    assert absent(q, ["報酬は採用が決まった後に支払われる。"]) is None  # a degree word prefers, never requires
    assert absent("その期間はどのくらいですか", ["その後も協議は続いた。"]) == "number"
    assert absent("どのくらいの期間、延期されたか", ["制裁は延期された。"]) == "number"


def test_nan_nin_is_also_which_people() -> None:
    q = "ローマ帝国が衰退すると、イベリア半島に何人が侵入したか。"
    assert absent(q, ["ローマ帝国が衰退すると、イベリア半島にもゲルマン人が侵入を始めた。"]) is None
    assert absent("会議には何人が参加したか。", ["会議には各国の代表が参加した。"]) == "number"


def test_places_and_kanji_names_are_found_by_the_dictionary() -> None:
    q = "首脳会談はどこで行われましたか？"
    assert supplies("place", "15日の米・アラスカでの会談で方針を転換した。", q)
    assert not supplies("place", "会談では停戦よりも和平を優先する方針に転換した。", q)
    # A place the question already names does not answer where.
    assert not supplies("place", "東京で会談が行われた。", "東京での会談はどこで行われましたか？")
    # Kanji names carry no mark, but the tokenizer's dictionary knows common ones.
    assert supplies("name", "研究会は田中隆之が主宰した。", "研究会を主宰したのは誰ですか。")
    assert not supplies("name", "研究会は大学の教員が主宰した。", "研究会を主宰したのは誰ですか。")


def test_where_with_a_particle_wants_a_place_marked_by_it() -> None:
    q = "米ロ首脳会談はどこで行われましたか？"
    assert case_marked_place("15日の米・アラスカでのロシアのプーチン大統領との会談で方針を転換した。", q)
    # Places named as the object of something else ("クリミアの割譲") are not where it happened.
    assert not case_marked_place("米ロ首脳会談で言及された和平条件（クリミアの割譲）を説明した。", q)
    assert case_marked_place("このため水力発電所の建設が相次ぎ、タイなどに電力を輸出している。", "ラオスはどこに電力を輸出している")
    assert not case_marked_place("タイから電力を輸入している。", "ラオスはどこに電力を輸出している")
    # Without a particle ("どこですか") any place answers: `supplies` decides, not this.
    assert not case_marked_place("15日の米・アラスカでの会談で方針を転換した。", "会談の場所はどこですか")
    assert not case_marked_place("The summit was held in Alaska.", "Where was the summit held?")


def test_where_is_answered_by_the_sentence_that_says_where(embedder: object, tmp_path: Path) -> None:
    pipe = make_pipeline(make_settings(tmp_path, llm="extractive"), embedder, make_retrieve(embedder, briefing_passages()))
    a = pipe.ask("米ロ首脳会談はどこで行われましたか？")
    assert not a.refused, a.refusal_reason
    assert "アラスカ" in a.citations[0].quote
    assert_valid(a)


def test_names_never_refuse() -> None:
    assert asked_types("報道官の名前は？") == ["name"]
    assert absent("報道官の名前は？", ["報道官は会見で述べた。"]) is None


MEMO_VAGUE = "北海電機と南洋精工の統合協議は、これまでに複数回行われたが、条件面で折り合っていない。"
MEMO_EXACT = "北海電機と南洋精工の統合協議は、これまでに3回行われたが、条件面で折り合っていない。"
QUESTION = "北海電機と南洋精工の統合協議は、これまで何回行われましたか。"


def test_a_quote_without_the_asked_number_is_a_refusal_that_says_so(embedder: object, tmp_path: Path) -> None:
    pipe = make_pipeline(make_settings(tmp_path, llm="extractive"), embedder,
                         make_retrieve(embedder, briefing_passages([MEMO_VAGUE])))
    a = pipe.ask(QUESTION)
    assert a.refused and a.refusal_reason == "asked_detail_absent (number)"
    assert a.answer == "資料には、お尋ねの数値が書かれていません。"
    assert a.citations == [] and a.passages[0].text == MEMO_VAGUE  # the closest passage is still shown
    assert a.grounding.supported == a.grounding.checked
    when = pipe.ask("北海電機と南洋精工の統合協議はいつ始まりましたか。")
    assert when.refused and when.refusal_reason == "asked_detail_absent (date)"


def test_the_same_question_is_answered_when_the_number_is_there(embedder: object, tmp_path: Path) -> None:
    pipe = make_pipeline(make_settings(tmp_path, llm="extractive"), embedder,
                         make_retrieve(embedder, briefing_passages([MEMO_EXACT])))
    a = pipe.ask(QUESTION)
    assert not a.refused, a.refusal_reason
    assert any("3回" in c.quote for c in a.citations)
    assert_valid(a)


def test_english_refusal_names_the_missing_detail(embedder: object, tmp_path: Path) -> None:
    memo = "The merger talks between Hokkai Denki and Nanyo Seiko have been held several times without agreement."
    pipe = make_pipeline(make_settings(tmp_path, llm="extractive"), embedder, make_retrieve(embedder, briefing_passages([memo])))
    a = pipe.ask("How many times have the merger talks between Hokkai Denki and Nanyo Seiko been held?")
    assert a.refused and a.answer == "The documents do not give the number asked for."


PLAN = "政府は2040年度の電源構成で再生可能エネルギーを4〜5割程度とする目標を掲げ、原子力は2割程度とした。"


def test_a_year_the_quotes_do_not_speak_of_is_refused_and_named(embedder: object, tmp_path: Path) -> None:
    pipe = make_pipeline(make_settings(tmp_path, llm="extractive"), embedder, make_retrieve(embedder, briefing_passages([PLAN])))
    asked = pipe.ask("2040年度の電源構成で再生可能エネルギーはどの程度とする目標ですか。")
    assert not asked.refused, asked.refusal_reason
    assert_valid(asked)
    other = pipe.ask("2030年度の電源構成で再生可能エネルギーはどの程度とする目標ですか。")
    assert other.refused and other.refusal_reason == "asked_detail_absent (year 2030)"
    assert other.answer == "お尋ねの2030年について答える記述は見つかりませんでした（近い記述は別の年についてのものです）。"
    english = pipe.ask("What is the renewable energy target for fiscal 2030?")
    assert english.refused and english.answer.startswith("Nothing found answers this for 2030")


def test_a_quote_naming_no_year_does_not_veto_the_year_asked() -> None:
    assert veto("1989年に何が崩壊しましたか。", ["同年、ベルリンの壁が崩壊した。"]) is None
    assert veto("1989年に何が崩壊しましたか。", ["1989年、ベルリンの壁が崩壊した。"]) is None
    assert veto("1989年に何が崩壊しましたか。", ["1991年、ソ連が崩壊した。"]) == "year 1989"
    # Not a year: part of a longer figure.
    assert veto("予算12030億円の内訳は？", ["2025年度の予算は1兆円。"]) is None


def test_the_sentence_after_the_best_gives_the_amount_asked_for(embedder: object, tmp_path: Path) -> None:
    memo = ("人手不足を背景に、国内工場の自動化投資を前倒しする。2027年度までに300億円を投じ、生産性を2割高める計画だ。"
            "また、欧州での販売網の拡大に向け、現地の販売会社の買収を検討している。")
    pipe = make_pipeline(make_settings(tmp_path, llm="extractive"), embedder, make_retrieve(embedder, briefing_passages([memo])))
    a = pipe.ask("工場の自動化にいくら投資しますか。")
    assert not a.refused, a.refusal_reason
    assert any("300億円" in c.quote for c in a.citations), a.answer
    assert not any("欧州" in c.quote for c in a.citations), a.answer
    assert_valid(a)


def test_an_exchange_rate_is_a_price_not_a_share() -> None:
    q = "What exchange rate does the company assume?"
    assert supplies("number", "為替の前提は1ドル=145円とした。", q)
    # An interest rate is still a percentage.
    assert not supplies("number", "政策金利の決定は2027年度に持ち越した。", "What interest rate has the central bank set?")


@pytest.mark.parametrize("question", [
    "What is the current interest rate of the Bank of Japan?", "What was the population of Kenya in 2014?",
    "What's the price of oil?", "What will be the total cost of the new plant?"])
def test_what_is_the_figure_asks_for_a_number(question: str) -> None:
    assert "number" in asked_types(question)


@pytest.mark.parametrize("question", ["What did the leaders share?", "What is the company's strategy?",
                                      "What did the price cap on Russian oil aim at?"])
def test_a_word_for_a_figure_elsewhere_in_the_question_does_not(question: str) -> None:
    assert "number" not in asked_types(question)


def test_a_price_is_answered_by_a_sum_not_by_any_figure() -> None:
    assert not supplies("number", "交渉は2段階で進める。", "What is the price of oil?")
    assert supplies("number", "原油価格は1バレル80ドル前後で推移した。", "What is the price of oil?")
    assert supplies("number", "売上高は842億円だった。", "売上高はいくらですか。")
    assert supplies("number", "The plan would cost 4.2 million dollars over three years.", "計画の費用はいくらですか")
    assert not supplies("number", "The plan adds two reading rooms.", "What is the cost of the plan?")
    assert not supplies("number", "売上高は前年から3期連続で増えた。", "売上高はいくらですか。")
    # A share of a sum answers "いくら" too.
    assert supplies("number", "サービス産業が全GDPの3分の2を占める。", "サービス産業は全GDPのいくら占めているか？")


def test_the_year_of_the_heading_a_quote_stands_under_counts(embedder: object, tmp_path: Path) -> None:
    import dataclasses

    memo = "年間配当は1株当たり60円とし、前期より10円増やす。自社株買いは実施しない。"
    passages = [dataclasses.replace(p, title="北海電機 2025年度第2四半期決算の概要") if p.doc_id == "extra-0" else p
                for p in briefing_passages([memo])]
    pipe = make_pipeline(make_settings(tmp_path, llm="extractive"), embedder, make_retrieve(embedder, passages))
    same = pipe.ask("北海電機の2025年度の年間配当はいくらですか。")
    assert not same.refused, same.refusal_reason
    other = pipe.ask("北海電機の2026年度の年間配当はいくらですか。")
    assert other.refused and other.refusal_reason == "asked_detail_absent (year 2026)", other.answer
    assert veto("2026年度の配当は？", ["年間配当は60円とする。"]) is None  # without the heading, nothing says which year


@pytest.mark.parametrize(("question", "quotes", "headings", "expected"), [
    # A figure of something else is no answer to a quantity asked for by name.
    ("What is the current interest rate of the Bank of Japan?", ["中国向けは前年同期比9%減の158億円にとどまった。"],
     ["2026年度第1四半期決算"], "measure interest rate"),
    ("日本銀行の政策金利は何%ですか。", ["売上高は前年同期比12%増の842億円となった。"], [], "measure interest rate"),
    ("What is the company's dividend for this year?", ["新工場への投資額は総額で約450億円を見込む。"], [], "measure dividend"),
    ("インドの人口はどのくらいか。", ["インドの国土は約328万平方キロメートルある。"], [], "measure population"),
    # Named by the quote, in either language, or by the heading it stands under.
    ("What is the company's dividend for this year?", ["年間配当は1株60円を予定する。"], [], None),
    ("年間配当はいくらですか", ["1株当たり60円とする。"], ["株主還元（配当）"], None),
    ("What was the operating profit?", ["営業利益は同21%増の63億円だった。"], [], None),
    ("東京の人口はどのくらいか。", ["東京都には約1400万人が住んでいる。"], [], None),
    # Named as a topic or in passing, the quantity is not what is asked for.
    ("なぜ売上が減ったのか", ["景気減速の影響を受けた。"], [], None),
    ("How did sales to China do?", ["中国向けは前年同期比9%減の158億円にとどまった。"], [], None),
    ("人口が少ない国はどこか。", ["ラオスは山がちな内陸国である。"], [], None),
])
def test_a_quantity_asked_for_by_name_must_be_spoken_of(question: str, quotes: list[str], headings: list[str],
                                                        expected: str | None) -> None:
    assert veto(question, quotes, headings) == expected


def test_the_refusal_names_the_missing_quantity_in_the_questions_language() -> None:
    from assistant.answering.refusal import RefusalReason, refusal_text

    assert refusal_text("en", RefusalReason.ASKED_DETAIL_ABSENT, "measure interest rate") == \
        "The documents do not give the interest rate asked for."
    assert refusal_text("ja", RefusalReason.ASKED_DETAIL_ABSENT, "measure interest rate") == \
        "資料には、お尋ねの金利についての記述が見つかりませんでした。"


RESULTS = ("南陽食品　2026年度上期決算の概要。上期の売上高は前年同期比8%増の1,260億円となった。"
           "海外向けは前年同期比6%減の210億円にとどまった。営業利益は同15%増の94億円だった。"
           "中間配当は1株当たり25円とし、前年から5円増やす。")


def test_a_quantity_the_passages_never_speak_of_is_refused_by_name(embedder: object, tmp_path: Path) -> None:
    pipe = make_pipeline(make_settings(tmp_path, llm="extractive"), embedder, make_retrieve(embedder, briefing_passages([RESULTS])))
    price = pipe.ask("What is the company's share price?")
    assert price.refused and price.refusal_reason == "asked_detail_absent (measure share price)"
    assert price.answer == "The documents do not give the share price asked for."
    dividend = pipe.ask("中間配当はいくらですか。")
    assert not dividend.refused and "25円" in dividend.citations[0].quote
    # The sentence leaves its topic (売上高) to the one before: its passage speaks of it.
    fall = pipe.ask("How much did overseas sales fall?")
    assert not fall.refused, fall.refusal_reason
    assert "210億円" in fall.citations[0].quote
    assert_valid(fall)


def test_a_sentence_about_another_quantity_is_not_the_answer(embedder: object, tmp_path: Path) -> None:
    assert asked_measures("上期の営業利益はいくらですか。") == ["profit"]
    assert asked_measures("なぜ営業利益が増えたのか") == []
    assert names_other_measure(["profit"], "上期の売上高は前年同期比8%増の1,260億円となった。")
    assert not names_other_measure(["profit"], "営業利益は同15%増の94億円だった。")
    assert not names_other_measure(["revenue"], "海外向けは前年同期比6%減の210億円にとどまった。")
    assert not names_other_measure(["revenue"], "2026年度の海外向けは6%減った。")  # "年度" names no temperature
    pipe = make_pipeline(make_settings(tmp_path, llm="extractive"), embedder, make_retrieve(embedder, briefing_passages([RESULTS])))
    # The sales sentence shares 上期 and 前年 with the question, and was quoted first.
    a = pipe.ask("上期の営業利益は前年からどれだけ増えましたか。")
    assert not a.refused, a.refusal_reason
    assert [c.quote for c in a.citations] == ["営業利益は同15%増の94億円だった。"], a.answer
