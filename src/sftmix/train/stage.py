"""One training stage: parent weights + data + settings -> a published model folder.

A stage starts from its parent's weights (a base model or the previous stage's
folder) with a fresh optimiser and learning-rate schedule, and writes into its
own directory ``out``:

* ``model.safetensors`` + ``config.json`` + the tokenizer (LoRA merged in);
* ``stage_config.json`` -- the resolved settings, the parent and the data;
* ``data_manifest.json`` -- where the data came from and its token counts;
* ``train_log.jsonl`` -- one line per logging step;
* ``COMPLETE.json`` -- written last, the folder is renamed into place atomically.

Work happens in a persistent sibling ``<out>.work/`` holding the Trainer's
checkpoints. A stage killed at any point (SIGKILL included) and run again
resumes from its last complete checkpoint -- weights, optimiser, scheduler, RNG
states and the data position come back -- and ends with the same weights as a
run that was never interrupted. A complete ``out`` is never recomputed.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sftmix.artifacts import building, is_complete, read_marker
from sftmix.data.records import Example
from sftmix.errors import ConfigError, DataError, SftmixError, decode_line, json_problem
from sftmix.keys import artefact_key
from sftmix.settings import current
from sftmix.templates import get_template
from sftmix.train.config import TrainSettings

log = logging.getLogger(__name__)

CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def process_state() -> Any:
    """accelerate's view of the processes of this run.

    ``cpu=True`` where there is no GPU: without it a CPU-only process group started by
    ``accelerate launch --multi_gpu`` (or ``torchrun``) is taken for a single process until
    the Trainer sets it up, and every process would think it is the main one.
    """
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def work_dir(out: Path) -> Path:
    return out.with_name(out.name + ".work")


# ---- data -----------------------------------------------------------------------------------

def read_examples(path: str | Path) -> list[Example]:
    """Examples from a mixture folder (read by the data layer) or a JSONL file of Examples."""
    from sftmix.data.mixing import read_mixture

    path = Path(path)
    if path.is_dir():
        return read_mixture(path)
    file = path
    if not file.is_file():
        raise DataError(f"{path}: not found (expected a mixture folder with data.jsonl, "
                        "or a JSONL file of examples)")
    examples = []
    with open(file, "rb") as f:
        for number, raw in enumerate(f, start=1):
            line = decode_line(raw, file, number, "examples")
            if not line.strip():
                continue
            try:
                examples.append(Example.from_dict(json.loads(line)))
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                problem = json_problem(exc) if isinstance(exc, json.JSONDecodeError) else repr(exc)
                raise DataError(f"{file}, line {number}: not an example record ({problem}); expected "
                                "one JSON object with id, ability, source and messages") from None
    return examples


def ids_hash(examples: Sequence[Example]) -> str:
    """The data layer's hash of the ordered example ids (as in a mixture's manifest)."""
    from sftmix.data.manifest import ids_sha256

    return ids_sha256(examples)


# ---- checkpoints ----------------------------------------------------------------------------

def last_checkpoint(checkpoints: Path) -> Path | None:
    """The newest complete checkpoint; incomplete ones (killed while saving) are removed.

    The Trainer writes ``trainer_state.json`` last, so its presence marks a complete one.
    """
    if not checkpoints.is_dir():
        return None
    found = sorted(((int(m.group(1)), p) for p in checkpoints.iterdir()
                    if (m := CHECKPOINT.match(p.name)) and p.is_dir()), reverse=True)
    for _, path in found:
        if (path / "trainer_state.json").is_file():
            return path
        log.warning("removing incomplete checkpoint %s", path)
        shutil.rmtree(path, ignore_errors=True)
    return None


# ---- the stage ------------------------------------------------------------------------------

def run_stage(parent: str | Path, examples: Sequence[Example], settings: TrainSettings,
              out: str | Path, *, key: str | None = None, data_manifest: dict[str, Any] | None = None,
              callbacks: Sequence[Any] = (), name: str = "stage", overwrite: bool = False) -> Path:
    """Train one stage and publish it at ``out``; returns ``out``.

    ``key`` names what the stage is trained from: a study passes its stage job's key;
    without one, the key is made from the parent, the ordered example ids and the
    settings. Resumes from ``<out>.work`` when an earlier run was interrupted; returns
    at once if ``out`` is complete. Under ``accelerate launch`` every process calls
    this; the main process writes the output. A complete ``out`` trained from other
    inputs is an error, or is replaced with ``overwrite``.
    """
    parent, out = Path(parent), Path(out)
    if key is None:
        parent_id = read_marker(parent).get("key", str(parent)) if is_complete(parent) else str(parent)
        key = artefact_key({"parent": parent_id, "data": ids_hash(examples),
                            "settings": settings.identity()})
    if is_complete(out):
        found = read_marker(out).get("key")
        if found == key:
            log.info("stage %s is complete at %s", name, out)
            return out
        if not overwrite:
            raise ConfigError(f"{out} holds a complete stage trained from other inputs "
                              f"(key {found}, this stage {key}); use another output folder, "
                              "or --overwrite to replace it")
        state = process_state()
        if state.is_main_process:
            log.warning("stage %s: replacing %s, trained from other inputs", name, out)
            shutil.rmtree(out)
        state.wait_for_everyone()
    check_parent(parent)
    if not examples:
        raise DataError(f"stage {name}: its data holds no examples")
    state = process_state()
    work = work_dir(out)
    if state.is_main_process:
        _claim(work, key)
    state.wait_for_everyone()
    from sftmix.train.progress import quiet_trainer

    trainer, stats = _make_trainer(parent, examples, settings, work, callbacks, state.num_processes)
    quiet_trainer(trainer, name, verbose=log.isEnabledFor(logging.DEBUG))
    resume = last_checkpoint(work / "checkpoints")
    if resume is not None:
        log.info("stage %s: resuming from %s", name, resume)
    started = time.monotonic()
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    train_seconds = round(time.monotonic() - started, 3)
    final = work / "final"
    if settings.lora is None:
        # Every process takes part: under FSDP or ZeRO-3 this gathers the sharded weights.
        trainer.save_model(str(final))
    state.wait_for_everyone()
    if state.is_main_process:
        manifest = {**(data_manifest or {}), "examples": len(examples), "ids_hash": ids_hash(examples),
                    "tokenize": stats.to_dict(), "train_rows": len(trainer.train_dataset)}
        resolved = {"name": name, "key": key, "parent": str(parent),
                    "settings": settings.model_dump(mode="json"),
                    "world_size": state.num_processes, "train_seconds": train_seconds,
                    "resumed_from": str(resume) if resume else None}
        _publish(trainer, settings, work, out, manifest, resolved)
        shutil.rmtree(work, ignore_errors=True)
    state.wait_for_everyone()
    return out


def _claim(work: Path, key: str) -> None:
    """Make ``work`` this stage's: checkpoints left by a stage with other inputs are discarded."""
    stamp = work / "stage_key"
    if work.is_dir() and (not stamp.is_file() or stamp.read_text().strip() != key):
        log.warning("%s holds work of a stage with other inputs; starting afresh", work)
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    if not stamp.is_file():
        stamp.write_text(key + "\n")


def _make_trainer(parent: Path, examples: Sequence[Example], settings: TrainSettings, work: Path,
                  callbacks: Sequence[Any], world_size: int) -> tuple[Any, Any]:
    import torch
    from transformers import TrainingArguments

    from sftmix.train.attention import choose_attention, compile_blocks
    from sftmix.train.collate import build_train_dataset, make_collator
    from sftmix.train.models import load_model, load_tokenizer, resolve_precision
    from sftmix.train.preemption import checkpoint_on_signal
    from sftmix.train.tokenize import tokenize_examples
    from sftmix.train.trainer import JsonlLogCallback, SftTrainer, TokenCountingCollator

    tokenizer = load_tokenizer(parent)
    template = get_template(settings.template, tokenizer)
    tokenized, stats = tokenize_examples(examples, tokenizer, template, settings.max_length)
    if not tokenized:
        raise DataError(f"no example has a trainable token within max_length={settings.max_length} "
                        f"({stats.examples} examples given)")
    dataset = build_train_dataset(tokenized, settings.packing, settings.max_length, settings.seed)
    precision = resolve_precision(settings.precision)
    model = load_model(parent, attn_implementation=choose_attention(settings.attention))
    if precision == "bf16_weights":
        model = model.to(torch.bfloat16)
    if settings.compile:
        compile_blocks(model)
    if settings.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    if settings.lora is not None:
        from sftmix.train.models import wrap_lora

        model = wrap_lora(model, settings.lora)
    try:
        accumulation = settings.gradient_accumulation(world_size)
    except ValueError as exc:
        raise ConfigError(f"training settings: {exc}") from None
    args = TrainingArguments(
        output_dir=str(work / "checkpoints"),
        num_train_epochs=settings.epochs,
        # max_steps caps the epochs; it never makes the Trainer loop over the data again.
        max_steps=_step_cap(settings, len(dataset), world_size),
        learning_rate=settings.learning_rate,
        warmup_steps=settings.warmup_ratio,  # a float < 1 is a ratio of the total steps
        lr_scheduler_type=settings.lr_scheduler,
        lr_scheduler_kwargs=_scheduler_kwargs(settings, len(dataset), world_size),
        per_device_train_batch_size=settings.per_device_batch_size,
        gradient_accumulation_steps=accumulation,
        weight_decay=settings.weight_decay,
        max_grad_norm=settings.max_grad_norm,
        seed=settings.seed,
        data_seed=settings.seed,
        # Without packing, rows of similar length share a batch (less padding); the
        # sampler takes the lengths the dataset already knows (see SftTrainer).
        train_sampling_strategy="group_by_length" if not settings.packing and settings.group_by_length
        else "random",
        bf16=precision == "bf16",
        optim="adamw_torch_fused",  # one kernel for all parameters (measured: bench/gpu_train_bench.py)
        use_cpu=not _has_accelerator(),
        save_strategy="steps",
        save_steps=settings.save_steps,
        save_total_limit=settings.save_total_limit,
        logging_steps=settings.logging_steps,
        report_to=settings.report_to or "none",
        remove_unused_columns=False,
        disable_tqdm=not current().progress,
        dataloader_drop_last=False,
        ddp_backend="gloo" if not _has_accelerator() and world_size > 1 else None,
    )
    collator = make_collator(settings.packing, tokenizer.pad_token_id,
                             getattr(model.config, "_attn_implementation", "sdpa"))
    trainer = SftTrainer(model=model, args=args, train_dataset=dataset,
                         data_collator=TokenCountingCollator(collator), processing_class=tokenizer,
                         callbacks=[JsonlLogCallback(work / "train_log.jsonl"), *callbacks,
                                    *checkpoint_on_signal()])
    return trainer, stats


def _scheduler_kwargs(settings: TrainSettings, rows: int, world_size: int) -> dict[str, int]:
    """What the schedule needs beyond the Trainer's arguments: warmup-stable-decay's decay
    length, in steps, from ``decay_ratio`` of the steps the stage will take."""
    if settings.lr_scheduler != "warmup_stable_decay":
        return {}
    steps = settings.optimiser_steps(rows, world_size)
    return {"num_decay_steps": max(1, round(settings.decay_ratio * steps))}


def _step_cap(settings: TrainSettings, rows: int, world_size: int) -> int:
    """``max_steps`` for the Trainer: the cap when it ends training before ``epochs`` do, else -1."""
    if settings.max_steps is None:
        return -1
    uncapped = settings.model_copy(update={"max_steps": None}).optimiser_steps(rows, world_size)
    return settings.max_steps if settings.max_steps < uncapped else -1


def _has_accelerator() -> bool:
    import torch

    return torch.cuda.is_available()


def _publish(trainer: Any, settings: TrainSettings, work: Path, out: Path,
             manifest: dict[str, Any], resolved: dict[str, Any]) -> None:
    from sftmix.artifacts import write_json_atomic

    with building(out, {"kind": "stage", "key": resolved["key"], "name": resolved["name"],
                        "train_seconds": resolved.get("train_seconds")}) as tmp:
        if settings.lora is not None:
            from sftmix.train.models import merge_lora

            model = merge_lora(trainer.accelerator.unwrap_model(trainer.model))
            model.save_pretrained(tmp, safe_serialization=True)
            trainer.processing_class.save_pretrained(tmp)
        else:
            for item in (work / "final").iterdir():
                if item.is_file() and item.name != "training_args.bin":
                    shutil.copyfile(item, tmp / item.name)
        write_json_atomic(tmp / "stage_config.json", resolved)
        write_json_atomic(tmp / "data_manifest.json", manifest)
        log_file = work / "train_log.jsonl"
        if log_file.is_file():
            shutil.copyfile(log_file, tmp / "train_log.jsonl")
        else:
            (tmp / "train_log.jsonl").write_text("")
    log.info("stage published at %s", out)


def check_parent(parent: Path) -> Path:
    if not (parent / "config.json").is_file():
        raise SftmixError(f"parent model {parent}: no config.json (expected a model folder or a "
                          "completed stage)")
    return parent
