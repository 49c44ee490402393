"""Offline, dependency-free language identification, good enough to check "answer in Hindi".

IFEval uses ``langdetect``; sftmix does not depend on it, so this is a small
best-effort identifier with two stages:

1. *Script.* Most of IFEval's target languages have their own script (Hangul,
   Thai, Tamil, Bengali, ...), and the dominant script among the letters
   decides. Scripts shared by several languages (Devanagari: hi/mr/ne;
   Arabic: ar/fa/ur; Cyrillic: ru/bg/uk; Han/kana: zh/ja) are told apart by
   letters or very frequent words peculiar to each.
2. *Latin script.* Scores of the most frequent function words of each
   supported language, plus Vietnamese's stacked diacritics.

Limits (documented, not hidden): short texts (a few words) can be
misidentified; closely related languages not listed here (e.g. Catalan,
Galician) are reported as their nearest listed neighbour; text with no
letters is ``None``. Supported codes: see :data:`SUPPORTED`.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

# (first, last) code points of each script block, and the language it implies if unique.
_SCRIPTS: dict[str, tuple[tuple[int, int], ...]] = {
    "devanagari": ((0x0900, 0x097F),),
    "bengali": ((0x0980, 0x09FF),),
    "gurmukhi": ((0x0A00, 0x0A7F),),
    "gujarati": ((0x0A80, 0x0AFF),),
    "tamil": ((0x0B80, 0x0BFF),),
    "telugu": ((0x0C00, 0x0C7F),),
    "kannada": ((0x0C80, 0x0CFF),),
    "malayalam": ((0x0D00, 0x0D7F),),
    "thai": ((0x0E00, 0x0E7F),),
    "hangul": ((0xAC00, 0xD7AF), (0x1100, 0x11FF), (0x3130, 0x318F)),
    "kana": ((0x3040, 0x30FF),),
    "han": ((0x4E00, 0x9FFF), (0x3400, 0x4DBF)),
    "arabic": ((0x0600, 0x06FF), (0x0750, 0x077F), (0xFB50, 0xFDFF), (0xFE70, 0xFEFF)),
    "hebrew": ((0x0590, 0x05FF),),
    "greek": ((0x0370, 0x03FF),),
    "cyrillic": ((0x0400, 0x04FF),),
    "armenian": ((0x0530, 0x058F),),
    "georgian": ((0x10A0, 0x10FF),),
    "ethiopic": ((0x1200, 0x137F),),
}
_UNIQUE = {
    "bengali": "bn", "gurmukhi": "pa", "gujarati": "gu", "tamil": "ta", "telugu": "te",
    "kannada": "kn", "malayalam": "ml", "thai": "th", "hangul": "ko", "hebrew": "he",
    "greek": "el", "armenian": "hy", "georgian": "ka", "ethiopic": "am",
}

# Frequent words (or letters) by language, for scripts several languages share.
_MARKERS: dict[str, dict[str, tuple[str, ...]]] = {
    "devanagari": {
        "hi": ("है", "हैं", "के", "में", "की", "और", "से", "को", "नहीं", "यह", "था"),
        "mr": ("आहे", "आणि", "च्या", "हे", "ची", "चा", "मध्ये", "आहेत", "नाही", "करा"),
        "ne": ("छ", "छन्", "र", "को", "मा", "हो", "पनि", "गर्न", "लागि", "भएको"),
    },
    "arabic": {
        "ar": ("في", "من", "على", "أن", "إلى", "التي", "الذي", "هذا", "ال", "ة"),
        "fa": ("است", "این", "را", "که", "می", "پ", "چ", "ژ", "گ", "ی"),
        "ur": ("ہے", "کے", "میں", "کی", "اور", "ٹ", "ڈ", "ڑ", "ں", "ے"),
    },
    "cyrillic": {
        "ru": ("ы", "э", "и", "не", "что", "это", "как", "ё"),
        "bg": ("ъ", "и", "не", "че", "това", "са", "на", "се"),
        "uk": ("і", "ї", "є", "ґ", "що", "це", "не"),
    },
}

_LATIN_WORDS: dict[str, tuple[str, ...]] = {
    "en": ("the", "and", "of", "to", "is", "in", "that", "it", "you", "for", "with", "are", "this"),
    "de": ("der", "die", "und", "das", "ist", "nicht", "ich", "zu", "den", "mit", "sie", "ein", "auf"),
    "fr": ("le", "la", "les", "et", "est", "des", "une", "que", "pour", "dans", "pas", "qui", "du"),
    "es": ("el", "la", "de", "que", "y", "los", "las", "es", "por", "una", "para", "con", "del"),
    "pt": ("o", "a", "de", "que", "e", "os", "não", "uma", "para", "com", "do", "da", "é", "em"),
    "it": ("il", "di", "che", "e", "la", "per", "non", "un", "una", "sono", "gli", "della", "è"),
    "nl": ("de", "het", "een", "en", "van", "is", "niet", "dat", "op", "zijn", "met", "voor"),
    "vi": ("và", "của", "là", "có", "không", "những", "các", "được", "cho", "người", "một"),
    "sw": ("na", "ya", "wa", "kwa", "ni", "za", "katika", "la", "kuwa", "hii", "cha", "yake"),
    "fi": ("ja", "on", "ei", "että", "se", "oli", "hän", "mutta", "kun", "ovat", "tai", "myös"),
    "tr": ("ve", "bir", "bu", "da", "için", "ile", "çok", "ne", "olarak", "daha", "değil"),
    "pl": ("i", "w", "nie", "się", "na", "jest", "że", "do", "to", "z", "jak", "ale"),
    "id": ("yang", "dan", "di", "itu", "dengan", "untuk", "tidak", "ini", "dari", "dalam"),
    "sv": ("och", "att", "det", "som", "en", "är", "på", "för", "med", "inte", "av", "jag"),
}
_VIETNAMESE = re.compile(r"[ạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹđơư]", re.IGNORECASE)

_PUNCT = "\"'“”‘’.,;:!?()[]{}<>«»।॥،؛؟-—*#"

SUPPORTED = tuple(sorted(set(_UNIQUE.values()) | {"zh", "ja"} | set(_LATIN_WORDS)
                         | {lang for m in _MARKERS.values() for lang in m}))


def _script(ch: str) -> str | None:
    cp = ord(ch)
    for name, ranges in _SCRIPTS.items():
        if any(lo <= cp <= hi for lo, hi in ranges):
            return name
    if ch.isalpha() and "LATIN" in unicodedata.name(ch, ""):
        return "latin"
    return None


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of the text's language (best effort), or None when it has no letters."""
    scripts = Counter(s for ch in text if ch.isalpha() and (s := _script(ch)))
    if not scripts:
        return None
    script = scripts.most_common(1)[0][0]
    if script in _UNIQUE:
        return _UNIQUE[script]
    if script in ("han", "kana"):
        return "ja" if scripts.get("kana", 0) > 0.1 * scripts.get("han", 0) else "zh"
    if script in _MARKERS:
        return _by_markers(text, _MARKERS[script])
    if script == "latin":
        return _latin(text)
    return None


def _tokens(text: str) -> Counter[str]:
    # Not ``\w+``: Python's ``\w`` excludes the combining vowel signs of Indic scripts.
    return Counter(t for w in text.split() if (t := w.strip(_PUNCT)))


def _by_markers(text: str, markers: dict[str, tuple[str, ...]]) -> str:
    tokens = _tokens(text)
    letters = Counter(text)
    scores = {}
    for lang, marks in markers.items():
        scores[lang] = sum(tokens[m] if len(m) > 1 else letters[m] + tokens[m] for m in marks)
    return max(scores, key=lambda lang: (scores[lang], lang == next(iter(markers))))


def _latin(text: str) -> str:
    tokens = Counter(w.lower() for w in re.findall(r"\w+", text))
    total = sum(tokens.values()) or 1
    scores = {lang: sum(tokens[w] for w in ws) / total for lang, ws in _LATIN_WORDS.items()}
    scores["vi"] += 5 * len(_VIETNAMESE.findall(text)) / max(len(text), 1)
    return max(scores, key=lambda lang: (scores[lang], lang == "en"))
