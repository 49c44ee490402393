"""Language identification for "answer in Hindi" instructions: langdetect, seeded.

IFEval's checkers identify the language of a response with ``langdetect``
(a port of Google's language-detection: character n-gram profiles of 55
languages, Wikipedia-trained). sftmix uses the same library and profiles, so a
verdict can only differ from the reference where the reference itself is
random: langdetect samples n-grams with a random generator, and IFEval leaves
it unseeded, so a borderline text (a few words, mixed languages) may come out
differently from one run to the next there. Here the detector has its own
factory with a fixed seed (0): the same text always gets the same language,
and nothing global (``langdetect.DetectorFactory.seed``) is changed for other
users of the library in the process.

Text in which langdetect finds no features (no letters, only a URL) is
``None``; the checkers let it pass, as IFEval does when langdetect raises.
"""

from __future__ import annotations

import functools

SEED = 0


@functools.cache
def _factory():  # -> langdetect.detector_factory.DetectorFactory
    from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory

    factory = DetectorFactory()
    factory.load_profile(PROFILES_DIRECTORY)
    factory.seed = SEED
    return factory


def detect_language(text: str) -> str | None:
    """langdetect's code for the text's language (``en``, ``hi``, ``zh-cn``, ...), or None.

    None means langdetect found nothing to go on (it raised); IFEval counts that as followed.
    """
    from langdetect.lang_detect_exception import LangDetectException

    detector = _factory().create()
    detector.append(text)
    try:
        return detector.detect()
    except LangDetectException:
        return None


def supported_languages() -> list[str]:
    """The language codes langdetect's profiles cover."""
    return sorted(_factory().get_lang_list())
