"""Every instruction checker on a response that follows it and one that does not."""

from __future__ import annotations

from typing import Any

import pytest

from sftmix.errors import DataError, SftmixError
from sftmix.eval.tasks.ifeval.checkers import CHECKERS, make_checker
from sftmix.eval.tasks.ifeval.language import detect_language, supported_languages
from sftmix.eval.tasks.ifeval.text import count_sentences, count_words, split_sentences

LONG = " ".join(["The garden grows slowly."] * 80)  # 320 words, 80 sentences

CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("keywords:existence", {"keywords": ["mom", "Mother"]},
     "A haiku for MOM:\nmy mother laughs loud", "A haiku for dad: he laughs loud"),
    ("keywords:frequency", {"keyword": "war", "frequency": 3, "relation": "at least"},
     "War, war and war again.", "War and war."),
    ("keywords:frequency", {"keyword": "peace", "frequency": 2, "relation": "less than"},
     "Peace is near.", "Peace, peace, everywhere."),
    ("keywords:forbidden_words", {"forbidden_words": ["rock", "field"]},
     "Rocky hills and fielder's gloves.", "We walked through the Field."),
    ("keywords:letter_frequency", {"letter": "#", "let_frequency": 2, "let_relation": "at least"},
     "#tea #life", "#tea life"),
    ("keywords:letter_frequency", {"letter": "t", "let_frequency": 3, "let_relation": "less than"},
     "Ta-da, a hat.", "The cat sat on the mat."),
    ("language:response_language", {"language": "hi"},
     "यह एक छोटी कहानी है और इसमें एक राजा है।", "This is a short story about a king."),
    ("language:response_language", {"language": "de"},
     "Das ist eine kurze Geschichte und sie ist nicht lang.", "Esta es una historia corta y no es larga."),
    ("change_case:english_lowercase", {},
     "hello there, this is all in lowercase.", "Hello there, this has a capital."),
    ("change_case:english_capital", {},
     "THIS IS A LOUD ANSWER IN ENGLISH.", "THIS IS MOSTLY loud."),
    ("change_case:capital_word_frequency", {"capital_frequency": 2, "capital_relation": "at least"},
     "Use the API and the SDK.", "Use the Api and the sdk."),
    ("change_case:capital_word_frequency", {"capital_frequency": 2, "capital_relation": "less than"},
     "Only one NASA word.", "NASA and ESA and JAXA."),
    ("length_constraints:number_words", {"num_words": 300, "relation": "at least"},
     LONG, "Too short."),
    ("length_constraints:number_words", {"num_words": 5, "relation": "less than"},
     "Four words only here.", "These are exactly five words."),
    ("length_constraints:number_sentences", {"num_sentences": 3, "relation": "less than"},
     "Dr. Smith arrived at 3.30 p.m. today. He left soon!", "One. Two. Three."),
    ("length_constraints:number_sentences", {"num_sentences": 31, "relation": "at least"},
     LONG, "Just one sentence here."),
    ("length_constraints:number_paragraphs", {"num_paragraphs": 3},
     "First part.\n***\nSecond part.\n***\nThird part.", "First.\n***\n\n***\nThird.\n***\nFourth."),
    ("length_constraints:nth_paragraph_first_word",
     {"num_paragraphs": 3, "nth_paragraph": 2, "first_word": "president"},
     "Intro text.\n\n\"President, they said.\"\n\nThe end.", "Intro.\n\nThe president.\n\nEnd."),
    ("detectable_content:number_placeholders", {"num_placeholders": 2},
     "Dear [name], see you at [address].", "Dear [name], see you there."),
    ("detectable_content:postscript", {"postscript_marker": "P.S."},
     "Best wishes.\nP.S. Bring snacks.", "Best wishes. PS bring snacks."),
    ("detectable_content:postscript", {"postscript_marker": "P.P.S"},
     "Regards.\n\nP.P.S don't forget", "Regards.\nP.S. don't forget"),
    ("detectable_format:number_bullet_lists", {"num_bullets": 3},
     "Tips:\n* one\n* two\n- three", "Tips:\n* one\n* two\n**bold** not a bullet"),
    ("detectable_format:constrained_response", {},
     "My answer is maybe. It depends on the weather.", "Maybe, it depends."),
    ("detectable_format:number_highlighted_sections", {"num_highlights": 2},
     "Some *first part* and **second part** here.", "Only *one part* and ** ** empty."),
    ("detectable_format:multiple_sections", {"section_spliter": "SECTION", "num_sections": 2},
     "SECTION 1\nIntro\nSECTION 2\nBody", "SECTION 1\nIntro and Section two"),
    ("detectable_format:json_format", {},
     "```json\n{\"name\": \"Ada\", \"age\": 36}\n```", "Here is the JSON: {\"name\": \"Ada\"}"),
    ("detectable_format:title", {},
     "<<A Day at Sea>>\nThe waves rolled.", "<< >>\nNo real title, or <<broken\ntitle>>."),
    ("startend:quotation", {},
     '  "Quoted from start to end."\n', '"Only opens the quote.'),
    ("startend:end_checker", {"end_phrase": "Is there anything else I can help with?"},
     '"Done. Is there anything else I can help with?"', "Is there anything else I can help with? Bye."),
    ("punctuation:no_comma", {}, "No commas here at all.", "Well, here is one."),
    ("combination:repeat_prompt", {"prompt_to_repeat": "Write a haiku about moms."},
     "write a haiku about moms.\nMom laughs in the sun", "Here it is: Write a haiku about moms."),
    ("combination:two_responses", {},
     "First answer.\n******\nSecond answer.", "Same answer.\n******\nSame answer."),
]


def test_at_least_twenty_checkers_and_all_are_tested() -> None:
    assert len(CHECKERS.names()) >= 20
    assert {c[0] for c in CASES} == set(CHECKERS.names())


@pytest.mark.parametrize(("iid", "kwargs", "good", "bad"), CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_checker_positive_and_negative(iid: str, kwargs: dict[str, Any], good: str, bad: str) -> None:
    checker = make_checker(iid, kwargs)
    assert checker.check(good), f"{iid} should accept {good!r}"
    assert not checker.check(bad), f"{iid} should reject {bad!r}"


def test_relation_boundaries() -> None:
    at_least = make_checker("length_constraints:number_words", {"num_words": 4, "relation": "at least"})
    less = make_checker("length_constraints:number_words", {"num_words": 4, "relation": "less than"})
    assert at_least.check("one two three four") and not less.check("one two three four")
    assert less.check("one two three") and not at_least.check("one two three")


def test_bad_kwargs_and_unknown_ids_are_user_errors() -> None:
    with pytest.raises(DataError, match="relation 'exactly'"):
        make_checker("length_constraints:number_words", {"num_words": 3, "relation": "exactly"})
    with pytest.raises(DataError, match=r"unknown kwargs \['colour'\]"):
        make_checker("punctuation:no_comma", {"colour": "red"})
    with pytest.raises(DataError, match="expected kwargs"):
        make_checker("keywords:frequency", {"keyword": "x"})
    with pytest.raises(SftmixError, match=r"available: .*punctuation:no_comma"):
        make_checker("punctuation:no_semicolon", {})
    # Where the reference draws at random, sftmix refuses (documented in docs/evaluation.md).
    with pytest.raises(DataError, match="nth_paragraph 3 is not between 1 and num_paragraphs"):
        make_checker("length_constraints:nth_paragraph_first_word",
                     {"num_paragraphs": 2, "nth_paragraph": 3, "first_word": "x"})
    # Keywords are patterns, as in IFEval; one that is no valid pattern is matched literally.
    assert make_checker("keywords:existence", {"keywords": ["c++"]}).check("I like C++.")
    assert make_checker("keywords:existence", {"keywords": ["colou?r"]}).check("the color")
    # IFEval's Hugging Face copy writes every kwarg, unused ones as null.
    assert make_checker("punctuation:no_comma", {"num_words": None}).check("ok")


def test_text_counting_conventions() -> None:
    assert count_words("Don't stop: 3.5 miles!") == 6  # don, t, stop, 3, 5, miles
    assert split_sentences("Mr. Lee met Dr. Chan at 5 p.m. on Friday. They ate.\nThen left") == [
        "Mr. Lee met Dr. Chan at 5 p.m. on Friday.", "They ate.", "Then left"]
    # Punkt's English model: an ellipsis followed by a capital is not taken as a boundary.
    assert count_sentences("Is it? Yes! It is... Fine.") == 3
    # Abbreviations and initials come from the model, not from a hand-kept list.
    assert count_sentences("He lives in o. Henry street. It is old.") == 2
    assert count_sentences("J. R. R. Tolkien wrote it. F. Scott Fitzgerald did not.") == 2
    assert count_sentences("") == 0


@pytest.mark.parametrize(("text", "lang"), [
    ("यह एक परीक्षण है और मैं यहाँ हूँ।", "hi"), ("हे एक चाचणी आहे आणि मी येथे आहे.", "mr"),
    ("यो परीक्षण हो र म यहाँ छु।", "ne"), ("Это тест, и я здесь. Вы понимаете?", "ru"),
    ("Това е тест и аз съм тук, нали?", "bg"), ("هذا اختبار وأنا هنا في البيت", "ar"),
    ("این یک آزمایش است و من اینجا هستم", "fa"), ("یہ ایک ٹیسٹ ہے اور میں یہاں ہوں", "ur"),
    ("Isto é um teste e eu não estou aqui.", "pt"), ("Questo è un test e io sono qui.", "it"),
    ("Đây là một bài kiểm tra và tôi ở đây.", "vi"), ("Hii ni jaribio na mimi niko hapa kwa kazi.", "sw"),
    ("Tämä on testi ja minä olen täällä mutta hän ei ole.", "fi"), ("이것은 테스트입니다", "ko"),
    ("ทดสอบภาษาไทย", "th"), ("ಇದು ಪರೀಕ್ಷೆ", "kn"), ("ਇਹ ਇੱਕ ਟੈਸਟ ਹੈ", "pa"), ("આ એક પરીક્ષણ છે", "gu"),
    ("இது ஒரு சோதனை", "ta"), ("ఇది ఒక పరీక్ష", "te"), ("এটি একটি পরীক্ষা", "bn"),
    ("The quick brown fox is in the house.", "en"), ("これは日本語のテストです", "ja"), ("这是一个测试", "zh-cn"),
    # Texts a hand-written identifier got wrong: Devanagari leaning Nepali, short Italian, short English.
    ("मेरा नाम राम है।", "hi"), ("माझे नाव राम आहे आणि मी पुण्यात राहतो.", "mr"),
    ("Il gatto dorme sul tetto\nla luna splende lontano\nsilenzio di notte", "it"),
    ("cat was too busy chasing a mouse.", "en"),
])
def test_language_detection(text: str, lang: str) -> None:
    assert lang in supported_languages()
    assert detect_language(text) == lang
    assert detect_language("12345 !!!") is None
    # Seeded: the same text gets the same answer every time (langdetect samples n-grams).
    assert {detect_language(text) for _ in range(5)} == {lang}
