"""MT-Bench: 80 two-turn questions graded 1-10 by an LLM judge (the reference study's general ability).

The protocol follows FastChat's single-answer grading:

* the model answers turn 1; turn 2 is generated with turn 1 and its answer in
  context;
* generation temperature depends on the category (writing and roleplay 0.7,
  stem and humanities 0.1, everything else greedy);
* each turn is graded separately on 1-10 by any OpenAI-compatible endpoint
  (:mod:`sftmix.eval.tasks.judge`); maths, reasoning and coding are graded against a
  reference answer; turn 2 is graded with the whole conversation in view;
* the judge is asked ``repetitions`` times (default 3, as the reference study
  did) and the ratings are averaged; a judgement whose rating cannot be parsed
  is missing, never 0.

Judge prompts come from a FastChat ``judge_prompts.jsonl`` (``single-v1``,
``single-math-v1`` and their ``-multi-turn`` forms) when one is given or lies
beside the questions, else from the built-in prompts below. Metrics per item:
``score`` (mean of the item's graded turns, weighted by how many were graded, so
the overall mean is the mean over all graded turns, as FastChat reports it),
``score_turn1``, ``score_turn2`` and ``score_<category>``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sftmix.data.records import Message
from sftmix.errors import ConfigError, DataError, decode_line, json_problem, where
from sftmix.eval.base import TASKS, EvalItem, GenerateFn, GenerationSpec, ItemResult, Metric, Task
from sftmix.eval.task_options import build_task
from sftmix.eval.tasks.judge import (
    ChatRequest,
    JudgeClient,
    JudgeConfig,
    endpoint_problem,
    judge_config,
    judge_settings_hint,
    missing_key_problem,
)

log = logging.getLogger(__name__)

CATEGORIES = ("writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem",
              "humanities")
NEED_REFERENCE = ("math", "reasoning", "coding")
CATEGORY_TEMPERATURE = {"writing": 0.7, "roleplay": 0.7, "stem": 0.1, "humanities": 0.1}
QUESTION_FILE = "question.jsonl"
REFERENCE_FILE = "reference_answer_gpt-4.jsonl"
JUDGE_PROMPTS_FILE = "judge_prompts.jsonl"
RATING = re.compile(r"\[\[(\d+\.?\d*)\]\]")
RATING_FALLBACK = re.compile(r"\[(\d+\.?\d*)\]")


@dataclass(frozen=True)
class JudgePrompt:
    name: str
    system_prompt: str
    prompt_template: str


_ASK = ("Explain your assessment briefly, then give a rating from 1 to 10 in exactly this "
        "form: \"[[rating]]\", for example \"Rating: [[6]]\".")
_GENERAL = ("Judge the assistant's response below as an impartial expert. Weigh helpfulness, "
            "relevance, accuracy, depth, creativity and level of detail. ")
_WITH_REF = ("Judge the assistant's response below as an impartial expert, for correctness "
             "first and helpfulness second. Compare it with the reference answer and point out "
             "any mistakes. ")
_SECOND = "Grade only the assistant's answer to the second user question. "
_CONVERSATION = ("<|Conversation|>\n\n### User:\n{question_1}\n\n### Assistant:\n{answer_1}\n\n"
                 "### User:\n{question_2}\n\n### Assistant:\n{answer_2}\n\n<|End of Conversation|>")
_REF_CONVERSATION = ("<|Reference|>\n\n### User:\n{question_1}\n\n### Reference answer:\n"
                     "{ref_answer_1}\n\n### User:\n{question_2}\n\n### Reference answer:\n"
                     "{ref_answer_2}\n\n<|End of Reference|>\n\n\n")

# Written for sftmix; they ask for the same "[[rating]]" output as FastChat's prompts.
DEFAULT_PROMPTS = {
    "single-v1": JudgePrompt("single-v1", "You are a careful evaluator of AI assistants.",
                             "[Instruction]\n" + _GENERAL + _ASK + "\n\n[Question]\n{question}\n\n"
                             "[Assistant's Answer]\n{answer}\n[End of Assistant's Answer]"),
    "single-math-v1": JudgePrompt("single-math-v1", "You are a careful evaluator of AI assistants.",
                                  "[Instruction]\n" + _WITH_REF + _ASK + "\n\n[Question]\n{question}"
                                  "\n\n[Reference Answer]\n{ref_answer_1}\n[End of Reference Answer]"
                                  "\n\n[Assistant's Answer]\n{answer}\n[End of Assistant's Answer]"),
    "single-v1-multi-turn": JudgePrompt("single-v1-multi-turn", _GENERAL + _SECOND + _ASK,
                                        _CONVERSATION),
    "single-math-v1-multi-turn": JudgePrompt("single-math-v1-multi-turn",
                                             _WITH_REF + _SECOND + _ASK,
                                             _REF_CONVERSATION + _CONVERSATION),
}


def parse_rating(judgement: str) -> float | None:
    """The ``[[r]]`` rating (``[r]`` as a fallback); None if absent or outside 1-10.

    The last match wins: judges sometimes quote the required format while explaining.
    """
    for pattern in (RATING, RATING_FALLBACK):
        found = pattern.findall(judgement)
        if found:
            value = float(found[-1])
            return value if 1.0 <= value <= 10.0 else None
    return None


def _read_jsonl(path: Path, what: str) -> list[tuple[int, dict[str, Any]]]:
    if not path.is_file():
        raise DataError(f"MT-Bench {what} file {path} does not exist; expected FastChat's "
                        f"{path.name} (see docs/evaluation.md)")
    rows = []
    for lineno, raw in enumerate(path.read_bytes().splitlines(), 1):
        line = decode_line(raw, path, lineno, f"MT-Bench {what}")
        if line.strip():
            try:
                rows.append((lineno, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise DataError(f"{where(path, lineno)}: not valid JSON ({json_problem(exc)}); expected one "
                                f"MT-Bench {what} record per line") from None
    return rows


def read_questions(path: Path) -> list[dict[str, Any]]:
    questions = []
    for lineno, q in _read_jsonl(path, "question"):
        turns = q.get("turns")
        if not isinstance(q.get("question_id"), int) or not isinstance(q.get("category"), str) \
                or not (isinstance(turns, list) and len(turns) == 2 and all(isinstance(t, str) for t in turns)):
            raise DataError(f"{where(path, lineno)}: expected question_id (int), category (text) "
                            f"and turns (two strings); found keys {sorted(q)}")
        questions.append(q)
    return questions


def read_references(path: Path) -> dict[int, list[str]]:
    refs = {}
    for lineno, r in _read_jsonl(path, "reference answer"):
        try:
            refs[int(r["question_id"])] = [str(t) for t in r["choices"][0]["turns"]]
        except (KeyError, IndexError, TypeError, ValueError):
            raise DataError(f"{where(path, lineno)}: expected question_id and choices[0].turns, "
                            "as in FastChat's reference_answer/gpt-4.jsonl") from None
    return refs


def read_judge_prompts(path: Path) -> dict[str, JudgePrompt]:
    prompts = {}
    for lineno, p in _read_jsonl(path, "judge prompt"):
        try:
            prompts[p["name"]] = JudgePrompt(p["name"], p["system_prompt"], p["prompt_template"])
        except KeyError as exc:
            raise DataError(f"{where(path, lineno, field=exc.args[0])}: missing; expected name, "
                            "system_prompt and prompt_template") from None
    missing = sorted(set(DEFAULT_PROMPTS) - set(prompts))
    if missing:
        raise DataError(f"{path}: lacks the single-answer judge prompt(s) {', '.join(missing)}")
    return prompts


class MTBenchTask(Task):
    name = "mtbench"
    ability = "general"
    metrics = (
        Metric("score", low=1.0, high=10.0),
        Metric("score_turn1", low=1.0, high=10.0),
        Metric("score_turn2", low=1.0, high=10.0),
        *(Metric(f"score_{c}", low=1.0, high=10.0) for c in CATEGORIES),
    )
    primary_metric = "score"

    def __init__(self, path: str | Path | None = None, *, question_file: str | Path | None = None,
                 reference_file: str | Path | None = None,
                 judge_prompts_file: str | Path | None = None,
                 judge: dict[str, Any] | JudgeConfig | None = None, repetitions: int = 3,
                 max_new_tokens: int = 1024, seed: int = 0) -> None:
        if path is None and question_file is None:
            raise ConfigError("the mtbench task needs 'path' (a folder with FastChat's "
                              f"{QUESTION_FILE}) or 'question_file'; build_suite('mtbench') "
                              "defaults to the copy bundled with sftmix")
        if repetitions < 1:
            raise ConfigError(f"mtbench option 'repetitions' is {repetitions}; expected >= 1")
        base = Path(path) if path is not None else Path(question_file).parent  # type: ignore[arg-type]
        self.question_file = Path(question_file) if question_file else base / QUESTION_FILE
        self.reference_file = Path(reference_file) if reference_file else base / REFERENCE_FILE
        self.judge_prompts_file = (Path(judge_prompts_file) if judge_prompts_file
                                   else base / JUDGE_PROMPTS_FILE)
        self.judge = judge_config(judge)
        self.repetitions = repetitions
        self.max_new_tokens = max_new_tokens
        self.seed = seed

    def prompts(self) -> dict[str, JudgePrompt]:
        if self.judge_prompts_file.is_file():
            return read_judge_prompts(self.judge_prompts_file)
        log.info("no %s; using the built-in judge prompts", self.judge_prompts_file)
        return DEFAULT_PROMPTS

    def items(self, limit: int | None = None) -> list[EvalItem]:
        questions = read_questions(self.question_file)[:limit]
        refs = read_references(self.reference_file) if self.reference_file.is_file() else {}
        items = []
        for q in questions:
            ref = refs.get(q["question_id"]) or q.get("reference")
            if q["category"] in NEED_REFERENCE and not ref:
                raise DataError(f"{self.reference_file}: no reference answer for question "
                                f"{q['question_id']} ({q['category']}), which is graded against one")
            items.append(EvalItem(id=f"mtbench/{q['question_id']}",
                                  prompt=[Message("user", q["turns"][0])], reference=ref,
                                  metadata={"category": q["category"], "turns": q["turns"]}))
        return items

    def generation(self) -> GenerationSpec:
        return GenerationSpec(max_new_tokens=self.max_new_tokens, seed=self.seed)

    def spec_for(self, category: str) -> GenerationSpec:
        return GenerationSpec(max_new_tokens=self.max_new_tokens, seed=self.seed,
                              temperature=CATEGORY_TEMPERATURE.get(category, 0.0))

    def _generate(self, generate: GenerateFn, items: Sequence[EvalItem],
                  conversations: Sequence[list[Message]]) -> list[str]:
        """One call per temperature, so greedy categories batch together."""
        answers = [""] * len(items)
        groups: dict[float, list[int]] = {}
        for i, item in enumerate(items):
            groups.setdefault(self.spec_for(item.metadata["category"]).temperature, []).append(i)
        for _, idx in sorted(groups.items()):
            spec = self.spec_for(items[idx[0]].metadata["category"])
            outs = generate([conversations[i] for i in idx], spec)
            for i, out in zip(idx, outs, strict=True):
                answers[i] = out[0]
        return answers

    def preflight(self) -> None:
        problem = endpoint_problem(self.judge) or missing_key_problem(self.judge)
        if problem:
            raise ConfigError(f"mtbench: {problem}")

    def incomplete(self, results: Sequence[ItemResult]) -> str | None:
        """Judgements the judge never answered make the evaluation incomplete, not lower."""
        unanswered = [e for r in results for e in r.metadata.get("judge_errors", [])]
        if not unanswered:
            return None
        asked = len(results) * 2 * self.repetitions
        cache = (f"the {asked - len(unanswered)} answered are cached in {self.judge.cache_path} "
                 "and a rerun asks only for the missing ones" if self.judge.cache_path
                 else "no judge cache is set, so a rerun asks for every judgement again")
        return (f"the judge at {self.judge.base_url} (model {self.judge.model!r}) did not answer "
                f"{len(unanswered)} of {asked} judgement(s) (last error: {unanswered[-1]}); "
                f"{cache}. {judge_settings_hint()}")

    def evaluate(self, generate: GenerateFn, limit: int | None = None) -> list[ItemResult]:
        self.preflight()
        items = self.items(limit)
        first = self._generate(generate, items, [list(it.prompt) for it in items])
        second = self._generate(generate, items, [
            [*it.prompt, Message("assistant", a), Message("user", it.metadata["turns"][1])]
            for it, a in zip(items, first, strict=True)])
        return self.score(items, [[a, b] for a, b in zip(first, second, strict=True)])

    def judge_request(self, item: EvalItem, answers: Sequence[str], turn: int,
                      prompts: dict[str, JudgePrompt]) -> tuple[str, str]:
        """The (system, user) messages asking for a rating of ``turn`` (1 or 2)."""
        with_ref = item.metadata["category"] in NEED_REFERENCE
        name = ("single-math-v1" if with_ref else "single-v1") + ("-multi-turn" if turn == 2 else "")
        q1, q2 = item.metadata["turns"]
        ref = [*(item.reference or ["", ""]), ""]
        fields = {"question": q1, "answer": answers[0], "ref_answer_1": ref[0],
                  "question_1": q1, "question_2": q2, "answer_1": answers[0],
                  "answer_2": answers[1] if len(answers) > 1 else "", "ref_answer_2": ref[1]}
        prompt = prompts[name]
        try:
            return prompt.system_prompt, prompt.prompt_template.format(**fields)
        except (KeyError, IndexError, ValueError) as exc:
            raise DataError(f"{self.judge_prompts_file}: judge prompt '{name}' has a placeholder "
                            f"that cannot be filled ({exc}); expected only {', '.join(fields)}") from None

    def score(self, items: Sequence[EvalItem], completions: Sequence[list[str]]) -> list[ItemResult]:
        prompts = self.prompts()
        requests = [ChatRequest((("system", system), ("user", user)), repetition=r)
                    for item, answers in zip(items, completions, strict=True)
                    for turn in (1, 2)
                    for system, user in [self.judge_request(item, answers, turn, prompts)]
                    for r in range(self.repetitions)]
        with JudgeClient(self.judge) as client:
            replies = client.complete_many(requests)
        per_item = 2 * self.repetitions
        return [self._result(item, answers, replies[k * per_item:(k + 1) * per_item])
                for k, (item, answers) in enumerate(zip(items, completions, strict=True))]

    def _result(self, item: EvalItem, answers: list[str], replies: Sequence[Any]) -> ItemResult:
        ratings: list[list[float | None]] = []
        turn_scores: list[float | None] = []
        judgements: list[list[str | None]] = []
        for t in range(2):
            chunk = replies[t * self.repetitions:(t + 1) * self.repetitions]
            parsed = [parse_rating(r.content) if r.content is not None else None for r in chunk]
            ratings.append(parsed)
            judgements.append([r.content if r.content is not None else f"(no reply: {r.error})"
                               for r in chunk])
            valid = [v for v in parsed if v is not None]
            turn_scores.append(sum(valid) / len(valid) if valid else None)
        graded = [s for s in turn_scores if s is not None]
        category = item.metadata["category"]
        metrics: dict[str, float] = {}
        if graded:
            metrics["score"] = metrics[f"score_{category}"] = sum(graded) / len(graded)
        for t, s in enumerate(turn_scores, 1):
            if s is not None:
                metrics[f"score_turn{t}"] = s
        missing = sum(v is None for turn in ratings for v in turn)
        reason = (f"turn 1 ratings {ratings[0]}, turn 2 ratings {ratings[1]}"
                  + (f"; {missing} judgement(s) missing" if missing else ""))
        return ItemResult(
            id=item.id, prompt=item.metadata["turns"][0], completions=list(answers),
            extracted=ratings, verdicts=turn_scores, metrics=metrics, reason=reason,
            metadata={"category": category, "turns": item.metadata["turns"],
                      "judgements": judgements,
                      "judge_errors": [r.error for r in replies if r.content is None],
                      "weights": {"score": float(len(graded)), f"score_{category}": float(len(graded))}},
        )


@TASKS.register("mtbench")
def mtbench_task(**options: Any) -> MTBenchTask:
    return build_task("mtbench", MTBenchTask, options)
