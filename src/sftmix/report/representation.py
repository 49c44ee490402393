"""The representation view: t-SNE of a middle layer's hidden states, before and after fine-tuning.

As in the reference study's analysis, N random training queries per source are
run through the base model and through a fine-tuned stage; each query is the
mean over its tokens of one middle layer's hidden states, and each model's
embeddings get their own 2-D t-SNE (fixed seed). Sources that separate after
fine-tuning but not before show that the model learned to tell the abilities'
data apart. The query is the user's first turn, as plain text, so that both
models see the same tokens.
"""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import numpy as np

from sftmix.artifacts import is_complete
from sftmix.data.spec import source_files
from sftmix.errors import SftmixError
from sftmix.report.plotting import COLORS, FigureOut, new_figure, skipped, to_png
from sftmix.results.data import StudyResults
from sftmix.results.pool import run_group

log = logging.getLogger(__name__)


def training_queries(sources: dict[str, tuple[str, str] | list[tuple[str, str]]], n: int,
                     seed: int = 0) -> dict[str, list[str]]:
    """Up to ``n`` random first user turns per ability from its ``(path, format)`` source, or
    from the files of a source of several."""
    out: dict[str, list[str]] = {}
    for ability, files in sources.items():
        queries = [q for path, fmt in ([files] if isinstance(files, tuple) else files)
                   for q in _first_turns(ability, path, fmt)]
        rng = random.Random(f"{seed}:{ability}")
        out[ability] = rng.sample(queries, min(n, len(queries)))
    return out


def _first_turns(ability: str, path: str, fmt: str) -> list[str]:
    from sftmix.data.formats import READERS
    from sftmix.data.loading import read_raw

    reader = READERS.get(fmt)(ability, ability)
    queries = []
    for i, raw in enumerate(read_raw(path)):
        if raw.error is not None:
            continue
        try:
            example = reader.read(raw.data, i)
        except Exception:  # a malformed record is not worth failing a report over
            continue
        first = next((m.content for m in example.messages if m.role == "user"), None)
        if first:
            queries.append(first)
    return queries


def middle_layer_embeddings(model_dir: str | Path, texts: list[str], layer: int | None = None,
                            batch_size: int = 8, max_length: int = 256) -> np.ndarray:
    """Mean over each text's tokens of the hidden states after layer ``layer`` (default: the middle)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.padding_side = "right"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token or tok.unk_token
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).to(device).eval()
    depth = model.config.num_hidden_layers
    layer = depth // 2 if layer is None else layer
    chunks = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            batch = tok(texts[start:start + batch_size], return_tensors="pt", padding=True,
                        truncation=True, max_length=max_length).to(device)
            out = model(**batch, output_hidden_states=True, use_cache=False)
            hidden = out.hidden_states[layer]  # index 0 is the embeddings
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            chunks.append(((hidden * mask).sum(1) / mask.sum(1).clamp(min=1)).float().cpu().numpy())
    del model
    return np.concatenate(chunks, axis=0)


def tsne_2d(x: np.ndarray, seed: int = 0) -> np.ndarray:
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    perplexity = max(2.0, min(30.0, (len(x) - 1) / 3))
    # One thread: a few hundred points take seconds, while OpenMP's threads on a busy
    # machine (other jobs of the study still running) slow t-SNE down by an order of magnitude.
    with threadpool_limits(1):
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)


def tsne_figure(base_dir: str | Path, tuned_dir: str | Path, queries: dict[str, list[str]],
                tuned_label: str = "after fine-tuning", seed: int = 0) -> FigureOut:
    """Two panels, before and after: one colour per source."""
    key, title = "tsne", "Representations of training queries, before and after fine-tuning"
    labels = [a for a, qs in queries.items() for _ in qs]
    texts = [q for qs in queries.values() for q in qs]
    if len(texts) < 5 or len(queries) < 2:
        return skipped(key, title, "Too few training queries for a t-SNE view (need two sources "
                       "and at least five queries).")
    fig, axes = new_figure(2, width=4.6, height=4.2)
    for ax, (model_dir, name) in zip(axes, ((base_dir, "base model"), (tuned_dir, tuned_label)), strict=True):
        log.info("t-SNE: embedding %d queries with %s", len(texts), model_dir)
        xy = tsne_2d(middle_layer_embeddings(model_dir, texts), seed)
        for i, ability in enumerate(queries):
            idx = [j for j, a in enumerate(labels) if a == ability]
            ax.scatter(xy[idx, 0], xy[idx, 1], s=10, color=COLORS[i % 10], label=ability, alpha=0.8)
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(fontsize=7)
    n = max(len(q) for q in queries.values())
    return FigureOut(key, title, f"Up to {n} random training queries per source; mean-pooled "
                     "middle-layer hidden states; t-SNE with a fixed seed, one per model.", to_png(fig))


def _pick_run(res: StudyResults, run: str | None) -> str | None:
    """The seeded run to show: the one named, else multi-task, else the largest mixture, else the last."""
    names = [r for r, stages in res.run_stages.items() if stages]
    if run is not None:
        hits = [r for r in names if r == run or run_group(r) == run]
        if not hits:
            raise SftmixError(f"--tsne-run: no run named {run!r} with trained stages; runs: "
                              + ", ".join(sorted({run_group(r) for r in names})))
        return hits[0]
    if not names:
        return None
    p = res.primary
    preferred = []
    if "c_strategy" in p:
        preferred += list(p[p["c_strategy"] == "multi-task"]["run"])
    if "c_fraction" in p:
        preferred += list(p[p["design"] == "mixed"].sort_values("c_fraction", ascending=False)["run"])
    for group in preferred:
        hit = [r for r in names if run_group(r) == group]
        if hit:
            return hit[0]
    return names[-1]


def study_tsne(res: StudyResults, n: int, run: str | None = None, seed: int = 0) -> FigureOut:
    """The t-SNE view for a study directory: its base model against a fine-tuned run's final stage."""
    key, title = "tsne", "Representations of training queries, before and after fine-tuning"
    chosen = _pick_run(res, run)
    if chosen is None:
        return skipped(key, title, "No trained stage in this study.")
    stages = res.run_stages[chosen]
    tuned = res.study_dir / "stages" / stages[-1]
    job = res.study_dir / "jobs" / f"{stages[0]}.json"
    if not is_complete(tuned) or not job.is_file():
        return skipped(key, title, f"The final stage of {run_group(chosen)} is not complete yet.")
    try:
        # A job file names its parent relative to the study directory (or an outside folder).
        base = res.study_dir / json.loads(job.read_text())["spec"]["parent"]
    except (ValueError, KeyError, TypeError):
        return skipped(key, title, f"{job} does not name the base model folder.")
    if not is_complete(base):
        return skipped(key, title, f"The base model folder {base} is not complete.")
    sources = {a: source_files(c.data.path, c.data.format) for a, c in res.study.abilities.items()
               if c.data.path}
    try:
        fig = tsne_figure(base, tuned, training_queries(sources, n, seed), f"after: {run_group(chosen)}", seed)
    except (OSError, ValueError, RuntimeError, SftmixError) as exc:
        # The rest of the report stands without this view (a moved data file, too little memory).
        log.warning("t-SNE view skipped: %s", exc)
        return skipped(key, title, f"Could not compute the view: {exc}")
    fig.caption += f" Fine-tuned model: the final stage of {run_group(chosen)}."
    return fig
