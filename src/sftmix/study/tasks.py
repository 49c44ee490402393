"""What each kind of job does, in the worker process: thin glue over data, train and eval.

* ``model``   -- make the base model a Hugging Face folder (GGUF import, or a small
  Llama with a BPE tokenizer trained on the study's training texts);
* ``mixture`` -- build a stage's data with the data layer and write it with its manifest;
* ``stage``   -- train one stage from its parent's weights on its mixture;
* ``eval``    -- evaluate a stage (or the base model) on one suite.

Each publishes its artefact directory atomically; none publishes anything on failure.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sftmix.errors import SftmixError

log = logging.getLogger(__name__)


def run(kind: str, payload: dict[str, Any], out: Path) -> None:
    runners = {"model": make_model, "mixture": make_mixture, "stage": train_stage, "eval": evaluate}
    if kind not in runners:
        raise SftmixError(f"unknown job kind {kind!r}; available: {', '.join(runners)}")
    runners[kind](payload, out)


def make_model(payload: dict[str, Any], out: Path) -> None:
    from sftmix.train.config import TinyLlamaConfig
    from sftmix.train.models import build_tiny_llama, import_gguf, smollm2_gguf_path

    model = payload["model"]
    if model.get("tiny") is not None:
        texts = list(_texts(payload["texts"]))
        tiny = TinyLlamaConfig(**model["tiny"]).model_dump(exclude={"texts"})
        build_tiny_llama(texts, out, **tiny)
    else:
        path = model["path"]
        import_gguf(smollm2_gguf_path() if path == "smollm2" else Path(path), out)


def _texts(sources: list[dict[str, Any]]):
    from sftmix.data.sources import load_source
    from sftmix.data.spec import SourceSpec

    for i, source in enumerate(sources):
        loaded = load_source(SourceSpec(name=f"source{i}", **source))
        for ex in loaded.examples:
            for m in ex.messages:
                yield m.content


def mixture_spec(payload: dict[str, Any], seed: int) -> Any:
    """The data layer's MixtureSpec for a stage recipe (sources named by ability)."""
    from sftmix.data.spec import EntrySpec, MixtureSpec, SourceSpec

    sources, entries = [], []
    for part in payload["parts"]:
        src = {k: v for k, v in part["source"].items() if k != "sha256"}
        sources.append(SourceSpec(name=part["ability"], ability=part["ability"], **src))
        amount = {"fraction": part["amount"]} if part["kind"] == "fraction" else {"count": int(part["amount"])}
        entries.append(EntrySpec(source=part["ability"], **amount))
    if payload.get("replay"):
        entries.append(EntrySpec(mixture_dir=payload["replay"]["mixture"],
                                 fraction=payload["replay"]["fraction"]))
    return MixtureSpec(seed=seed, sources=sources, entries=entries)


def make_mixture(payload: dict[str, Any], out: Path) -> None:
    from sftmix.data.mixing import build_mixture, write_mixture

    spec = mixture_spec(payload, payload["seed"])
    write_mixture(build_mixture(spec), out)


def train_stage(payload: dict[str, Any], out: Path) -> None:
    import json

    from sftmix.data.mixing import read_mixture
    from sftmix.train.config import TrainSettings
    from sftmix.train.stage import run_stage

    mixture = Path(payload["mixture"])
    examples = read_mixture(mixture)
    settings = TrainSettings(**payload["training"])
    manifest = json.loads((mixture / "manifest.json").read_text())
    run_stage(payload["parent"], examples, settings, out, data_manifest=manifest,
              name=payload.get("label", "stage"), callbacks=[_failpoint_callback()])


def _failpoint_callback() -> Any:
    from transformers import TrainerCallback

    from sftmix.faults import crashpoint

    class Failpoints(TrainerCallback):  # type: ignore[misc]
        """``train:step``: after an optimiser step that follows a saved checkpoint."""

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step > args.save_steps:
                crashpoint("train:step")

    return Failpoints()


def evaluate(payload: dict[str, Any], out: Path) -> None:
    """Every suite of one model: the model is loaded once, complete suites are skipped."""
    from sftmix.artifacts import is_complete
    from sftmix.eval.engine.generation import load_generator
    from sftmix.eval.runner import build_suite, run_suite

    generate = None
    for item in payload["suites"]:
        target = Path(item["out"])
        if is_complete(target):
            continue
        options = dict(item["options"])
        limit = options.pop("limit", None)
        generator = options.pop("generator", {})
        task = build_suite(item["suite"], options)
        if generate is None:
            generate = load_generator(payload["model_dir"], progress=False, **generator)
        run_suite(task, generate, target, suite=item["suite"], limit=limit,
                  info={"key": item["key"], "model": payload["model_dir"], "options": item["options"]})
