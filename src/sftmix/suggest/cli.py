"""``sftmix suggest`` and ``sftmix optimise``: choose the composition for a weighting of the abilities."""

from __future__ import annotations

import argparse
import json
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sftmix.cli import at_least
from sftmix.errors import SftmixError

if TYPE_CHECKING:
    from sftmix.suggest.search import Prediction


def _amounts(text: str, flag: str, allow_zero: bool) -> tuple[float, ...]:
    values = []
    for part in text.split(","):
        try:
            v = float(Fraction(part.strip()))
        except (ValueError, ZeroDivisionError):
            raise SftmixError(f"{flag}: {part.strip()!r} is not a number or a fraction such as 1/8") from None
        if v < 0 or (v == 0 and not allow_zero) or (flag == "--ks" and v > 1):
            raise SftmixError(f"{flag}: {part.strip()!r} is out of range "
                              f"({'0 <= k <= 1' if flag == '--ks' else 'fractions must be > 0'})")
        values.append(v)
    return tuple(sorted(set(values)))


def _tokens(text: str | None) -> float | None:
    if text is None:
        return None
    scale = {"k": 1e3, "m": 1e6, "g": 1e9, "b": 1e9}
    t = text.strip().lower()
    try:
        value = float(t[:-1]) * scale[t[-1]] if t and t[-1] in scale else float(t)
    except ValueError:
        raise SftmixError(f"--budget: expected a number of tokens such as 5000000 or 5M, found {text!r}") from None
    if value <= 0:
        raise SftmixError(f"--budget: must be > 0 tokens, found {text!r}")
    return value


def _space_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", help="ability weights, e.g. maths=1,code=1,general=2 (default: all 1)")
    p.add_argument("--fractions", default="1/8,1/4,1/2,1",
                   help="fractions of each ability's source that multi-task candidates use (default 1/8,1/4,1/2,1)")
    p.add_argument("--ks", default="0,1/32,1/8,1/4,1/2,1", help="DMT's k values to consider (default 0,1/32,1/8,1/4,1/2,1)")
    p.add_argument("--replicates", type=at_least(2), default=100, help="bootstrap replicates (default 100)")
    p.add_argument("--seed", type=at_least(0), default=0)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("suggest", help="fit each ability's response to the runs of a study and recommend a composition")
    p.add_argument("study_dir", type=Path)
    _space_args(p)
    p.add_argument("--budget", help="training tokens the recommended composition may cost (e.g. 5M)")
    p.add_argument("--next", type=at_least(1), default=2, dest="n_next", help="how many next runs to propose (default 2)")
    p.add_argument("--model", help="which of the study's models (default: the first)")
    p.add_argument("--export", type=Path, help="write the recommendation as LLaMA-Factory, open-instruct and axolotl configs here")
    p.set_defaults(func=_suggest)

    p = sub.add_parser("optimise", help="run a few cheap runs, then suggest-run-refit until the expected gain is small")
    p.add_argument("study", type=Path, help="study YAML file (its abilities, models, training and evaluation; "
                   "its designs are not run)")
    _space_args(p)
    p.add_argument("--budget", required=True, help="training tokens the optimiser may spend in all (e.g. 20M)")
    p.add_argument("-o", "--out", type=Path, help="study directory (default: studies/<name>-optimise)")
    p.add_argument("--batch", type=at_least(1), default=2, help="runs per round after the first (default 2)")
    p.add_argument("--threshold", type=float, default=0.005,
                   help="stop when the largest expected gain in weighted score is below this (default 0.005)")
    p.add_argument("--max-rounds", type=at_least(1), default=8)
    p.add_argument("--workers", type=at_least(1), help="jobs at a time (default: the study's 'workers')")
    p.add_argument("--executor", help="where jobs run: local or slurm (default: the study's "
                   "'executor: name', else local); the optimiser waits for each round's jobs")
    p.set_defaults(func=_optimise)


def _fmt_pred(p: Prediction) -> str:
    abil = ", ".join(f"{a} {m:.3f} [{lo:.3f}, {hi:.3f}]" for a, (m, lo, hi) in p.abilities.items())
    return (f"{p.composition.describe()}: weighted {p.mean:.3f} [{p.low:.3f}, {p.high:.3f}]; {abil}; "
            f"{p.tokens / 1e6:.2f}M training tokens")


def _suggest(args: argparse.Namespace) -> int:
    from sftmix.artifacts import write_json_atomic
    from sftmix.results.weights import parse_weights
    from sftmix.suggest.model import fit_model
    from sftmix.suggest.observations import study_observations
    from sftmix.suggest.search import Space, suggest

    if not (args.study_dir / "study.yaml").is_file():
        raise SftmixError(f"{args.study_dir}: not a study directory (expected the study.yaml that 'sftmix run' writes)")
    fractions, ks = _amounts(args.fractions, "--fractions", False), _amounts(args.ks, "--ks", True)
    budget = _tokens(args.budget)
    res, sizes, obs = study_observations(args.study_dir, args.model)
    abilities = res.abilities
    weights = parse_weights(args.weights, abilities)
    if len(obs) < 2:
        raise SftmixError(f"{args.study_dir}: {len(obs)} run(s) with a score for every ability; the response "
                          "model needs at least 2 (run more of the study, or use 'sftmix optimise')")
    space = Space(abilities, fractions, ks, res.general)
    model = fit_model(obs, abilities, args.replicates, args.seed)
    epochs = float(res.study.training.get("epochs", 3.0))
    sug = suggest(model, space, weights, sizes.examples, sizes.tokens_per_example, epochs, budget, args.n_next)
    kinds = ", ".join(f"{a}: {m.kind}" for a, m in model.models.items())
    print(f"fitted on {len(obs)} runs ({kinds}); weights {', '.join(f'{a}={w:g}' for a, w in weights.items())}")
    if sug.best_measured:
        print(f"best measured run: {sug.best_measured[0]} (weighted {sug.best_measured[1]:.3f})")
    if sug.recommended is None:
        raise SftmixError(f"--budget: no candidate costs at most {args.budget} training tokens")
    print("recommended: " + _fmt_pred(sug.recommended) + (" (measured)" if sug.recommended.measured else ""))
    print(f"largest expected gain of a new run: {sug.max_gain:.4f}")
    for p in sug.next_runs:
        print(f"next run (expected gain {p.gain:.4f}): " + _fmt_pred(p))
    write_json_atomic(args.study_dir / "suggest.json", sug.to_json())
    if args.export:
        from sftmix.suggest.export import export

        files = export(sug.recommended.composition, res.study, sizes.examples, args.export)
        print(f"exported {len(files)} files to {args.export}")
    print(json.dumps({"recommended": sug.recommended.composition.name, "weighted": sug.recommended.mean,
                      "max_expected_gain": sug.max_gain}))
    return 0


def _optimise(args: argparse.Namespace) -> int:
    from sftmix.results.weights import parse_weights
    from sftmix.study.executor import make_executor
    from sftmix.study.load import load_study
    from sftmix.suggest.optimise import Optimiser, Settings
    from sftmix.suggest.search import Space

    budget = _tokens(args.budget)
    assert budget is not None
    fractions, ks = _amounts(args.fractions, "--fractions", False), _amounts(args.ks, "--ks", True)
    study = load_study(args.study)
    if args.workers:
        study.workers = args.workers
    abilities = list(study.abilities)
    weights = parse_weights(args.weights, abilities)
    space = Space(abilities, fractions, ks, study.general)
    settings = Settings(weights, budget, space, args.batch, args.threshold, args.max_rounds,
                        args.replicates, args.seed)
    out = args.out or Path("studies") / f"{study.name}-optimise"
    # Each round needs its scores before the next is chosen: the executor waits for its jobs.
    executor = make_executor(args.executor or study.executor.name, study, wait=True)
    shown: set[int] = set()

    def show(rec: dict[str, Any]) -> None:
        """A round's scores as soon as it ends (flushed: stdout may be a file)."""
        shown.add(rec["round"])
        for run, m in (rec.get("measured") or {}).items():
            print(f"round {rec['round']}: {run}: weighted {m['weighted']:.3f} "
                  + " ".join(f"{a}={v:.3f}" for a, v in m["scores"].items()), flush=True)

    opt = Optimiser(study, out, settings, executor, on_round=show)
    result = opt.run()
    for rec in result.rounds:
        if rec["round"] not in shown:  # rounds of an earlier command, resumed from their files
            show(rec)
    print(f"stopped: {result.stop}; {len(result.rounds)} rounds, {result.tokens_spent / 1e6:.2f}M of "
          f"{budget / 1e6:.2f}M training tokens spent")
    if result.best:
        print(f"best measured: {result.best[0]} (weighted {result.best[1]:.3f})")
    if result.suggestion and result.suggestion.recommended:
        print("model's recommendation: " + _fmt_pred(result.suggestion.recommended))
    print(f"study directory: {out}; rounds in {out / 'optimise'}")
    print(json.dumps(result.to_json()))
    return 0
