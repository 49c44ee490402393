"""The job functions: what each kind of job does, in the worker, as thin glue over data, train
and eval (the table of kinds, ``sftmix.study.kinds``, names each one).

* ``model``   -- make the base model a Hugging Face folder (GGUF import, or a small
  Llama with a BPE tokenizer trained on the study's training texts);
* ``mixture`` -- build a stage's data with the data layer and write it with its manifest;
* ``stage``   -- train one stage from its parent's weights on its mixture;
* ``eval``    -- evaluate a stage (or the base model) on one suite.

Each publishes its artefact directory atomically; none publishes anything on failure.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sftmix.study.specs import BaseModelSpec, EvalSpec, MixtureSpec, StageSpec

log = logging.getLogger(__name__)


def make_model(spec: BaseModelSpec, out: Path, label: str = "") -> None:
    from sftmix.train.models import make_base_model

    make_base_model(spec.model, out, lambda: _texts(spec))


def _texts(spec: BaseModelSpec) -> Iterator[str]:
    from sftmix.data.sources import load_source

    for source in spec.texts:
        for ex in load_source(source).examples:
            for m in ex.messages:
                yield m.content


def mixture_spec(spec: MixtureSpec) -> Any:
    """The data layer's MixtureSpec for a stage recipe (sources named by ability)."""
    from sftmix.data.spec import EntrySpec
    from sftmix.data.spec import MixtureSpec as DataMixtureSpec

    sources, entries = [], []
    for part in spec.parts:
        sources.append(part.source)
        amount = {"fraction": part.amount} if part.kind == "fraction" else {"count": int(part.amount)}
        entries.append(EntrySpec(source=part.source.name, **amount))
    if spec.replay is not None:
        entries.append(EntrySpec(mixture_dir=spec.replay.mixture, fraction=spec.replay.fraction))
    return DataMixtureSpec(seed=spec.seed, sources=sources, entries=entries)


def make_mixture(spec: MixtureSpec, out: Path, label: str = "") -> None:
    from sftmix.data.mixing import build_mixture, write_mixture

    write_mixture(build_mixture(mixture_spec(spec)), out)


def train_stage(spec: StageSpec, out: Path, label: str = "") -> None:
    import json

    from sftmix.data.mixing import read_mixture
    from sftmix.train.stage import run_stage

    mixture = Path(spec.mixture)
    examples = read_mixture(mixture)
    manifest = json.loads((mixture / "manifest.json").read_text())
    run_stage(spec.parent, examples, spec.training, out, key=out.name, data_manifest=manifest,
              name=label or out.name, callbacks=[_failpoint_callback()])


def _failpoint_callback() -> Any:
    from transformers import TrainerCallback

    from sftmix.faults import crashpoint

    class Failpoints(TrainerCallback):  # type: ignore[misc]
        """``train:step``: after an optimiser step that follows a saved checkpoint."""

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step > args.save_steps:
                crashpoint("train:step")

    return Failpoints()


def evaluate(spec: EvalSpec, out: Path, label: str = "") -> None:
    """One suite on one model."""
    from sftmix.eval.engine.generation import load_generator
    from sftmix.eval.runner import build_suite, run_suite
    from sftmix.secrets import merged_from_env

    # Secrets (a judge's API key) come from the environment, never from the job file.
    options = dict(merged_from_env(spec.suite.suite, spec.suite.options))
    limit = options.pop("limit", None)
    generator = options.pop("generator", {})
    task = build_suite(spec.suite.suite, options)
    generate = load_generator(spec.model, progress=False, **generator)
    run_suite(task, generate, out, suite=spec.suite.suite, limit=limit,
              info={"key": out.name, "model": spec.model, "options": spec.suite.options})
