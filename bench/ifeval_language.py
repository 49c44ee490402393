"""Language identification for IFEval's response_language: langdetect (seeded) against lingua.

Texts: the hand-written pieces of the IFEval fidelity fixture
(``tests/eval/fixtures/ifeval_texts.py``: 27 languages, Hindi, Marathi and
Nepali side by side, short Italian verse, short English), each whole and cut to
its first 3 and first 6 words (short answers are where identifiers fail).
For each identifier, in the same run:

* accuracy against the language the text was written in;
* agreement with IFEval's reference verdict, which is langdetect's answer (computed here
  with the seeded detector, so langdetect agrees with it by construction);
* for langdetect unseeded (as lm-evaluation-harness calls it), how many texts
  get a different answer on some of 10 tries;
* milliseconds per text, after one untimed pass over every text (both warm).

lingua (``lingua-language-detector``, not a dependency of sftmix) is measured
when importable: ``PYTHONPATH=/path/to/lingua python bench/ifeval_language.py``.
The last line is a JSON object of the figures.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "eval" / "fixtures"))
from ifeval_texts import TEXTS  # noqa: E402

from sftmix.eval.tasks.ifeval.language import detect_language  # noqa: E402


def samples() -> list[tuple[str, str, str]]:
    """(language, length class, text)."""
    out = []
    for lang, texts in TEXTS.items():
        for text in texts:
            out.append((lang, "whole", text))
            words = text.split()
            for n in (3, 6):
                if len(words) > n:
                    out.append((lang, f"{n} words", " ".join(words[:n])))
    return out


def lingua_detector() -> Callable[[str], str | None] | None:
    try:
        from lingua import LanguageDetectorBuilder
    except ImportError:
        return None
    detector = LanguageDetectorBuilder.from_all_languages().build()

    def detect(text: str) -> str | None:
        found = detector.detect_language_of(text)
        if found is None:
            return None
        code = found.iso_code_639_1.name.lower()
        return "zh-cn" if code == "zh" else code

    return detect


def unseeded_instability(texts: list[str], tries: int = 10) -> int:
    import langdetect

    langdetect.DetectorFactory.seed = None
    unstable = 0
    for text in texts:
        answers = set()
        for _ in range(tries):
            try:
                answers.add(langdetect.detect(text))
            except langdetect.LangDetectException:
                answers.add(None)
        unstable += len(answers) > 1
    return unstable


def measure(name: str, detect: Callable[[str], str | None],
            rows: list[tuple[str, str, str]], reference: list[str | None]) -> dict:
    # One untimed pass first: lingua loads each language's model on first use and
    # langdetect its profiles on first call; the timed pass compares warm identifiers.
    for _, _, text in rows:
        detect(text)
    started = time.perf_counter()
    answers = [detect(text) for _, _, text in rows]
    elapsed = time.perf_counter() - started
    figures: dict = {"identifier": name, "ms_per_text": round(1000 * elapsed / len(rows), 2)}
    for cls in ("whole", "6 words", "3 words"):
        picked = [i for i, (_, c, _) in enumerate(rows) if c == cls]
        figures[f"accuracy_{cls.replace(' ', '_')}"] = round(
            sum(answers[i] == rows[i][0] for i in picked) / len(picked), 3)
    figures["agreement_with_reference"] = round(
        sum(a == r for a, r in zip(answers, reference, strict=True)) / len(rows), 3)
    wrong = [(rows[i][0], answers[i], rows[i][2][:40]) for i in range(len(rows))
             if rows[i][1] == "whole" and answers[i] != rows[i][0]]
    figures["wrong_whole_texts"] = wrong
    return figures


def main() -> None:
    rows = samples()
    reference = [detect_language(text) for _, _, text in rows]  # seeded langdetect
    results = [measure("langdetect (seed 0, sftmix)", detect_language, rows, reference)]
    lingua = lingua_detector()
    if lingua is not None:
        results.append(measure("lingua (all languages)", lingua, rows, reference))
    unstable = unseeded_instability([text for _, _, text in rows])
    for r in results:
        print(f"{r['identifier']:30s} whole {r['accuracy_whole']:.3f}  6 words "
              f"{r['accuracy_6_words']:.3f}  3 words {r['accuracy_3_words']:.3f}  "
              f"agrees with reference {r['agreement_with_reference']:.3f}  {r['ms_per_text']} ms")
        for lang, got, text in r["wrong_whole_texts"]:
            print(f"    {lang} -> {got}: {text}")
    print(f"langdetect unseeded: {unstable} of {len(rows)} texts change answer within 10 tries")
    print(json.dumps({"texts": len(rows), "languages": len(TEXTS), "results": results,
                      "unseeded_unstable_texts": unstable}, ensure_ascii=False))


if __name__ == "__main__":
    main()
