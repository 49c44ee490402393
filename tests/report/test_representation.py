"""The t-SNE view with a tiny Llama built in memory, on real training queries."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from sftmix.artifacts import building
from sftmix.report.representation import (
    middle_layer_embeddings,
    study_tsne,
    training_queries,
    tsne_2d,
)
from sftmix.results.data import load_results
from tests.report.conftest import KnownStudy, make_study, study_dict


def _sources(data: Path) -> dict[str, tuple[str, str]]:
    return {"maths": (str(data / "gsm8k/train.jsonl"), "gsm8k"),
            "code": (str(data / "code/code_alpaca_2k.json"), "alpaca"),
            "general": (str(data / "general/sharegpt_dpo_chosen.json"), "sharegpt")}


def save_tiny_llama(out: Path, texts: list[str], seed: int) -> None:
    """A 4-layer Llama (width 32) and a BPE tokenizer trained on ``texts``, as a model folder."""
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "</s>"]))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="</s>")
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=fast.vocab_size, hidden_size=32, intermediate_size=64,
                         num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=4,
                         max_position_embeddings=512, eos_token_id=fast.eos_token_id)
    LlamaForCausalLM(config).save_pretrained(out)
    fast.save_pretrained(out)


@pytest.fixture(scope="module")
def queries(shared_data: Path) -> dict[str, list[str]]:
    return training_queries(_sources(shared_data), 6, seed=0)


def test_training_queries_are_real_first_turns(queries: dict[str, list[str]], shared_data: Path) -> None:
    assert {a: len(q) for a, q in queries.items()} == {"maths": 6, "code": 6, "general": 6}
    questions = {json.loads(line)["question"] for line in (shared_data / "gsm8k/train.jsonl").open()}
    assert set(queries["maths"]) <= questions
    assert training_queries(_sources(shared_data), 6, seed=0) == queries
    assert training_queries(_sources(shared_data), 6, seed=1) != queries


def test_training_queries_of_a_source_of_several_files(shared_data: Path) -> None:
    alpaca = shared_data / "general" / "alpaca_en_demo.json"
    sharegpt = shared_data / "general" / "sharegpt_dpo_chosen.json"
    both = training_queries({"general": [(str(alpaca), "alpaca"), (str(sharegpt), "sharegpt")]}, 1299)
    # All 999 + 300 first turns: each file's, read with its own format.
    alone = [q for path, fmt in ((alpaca, "alpaca"), (sharegpt, "sharegpt"))
             for q in training_queries({"general": (str(path), fmt)}, 1299)["general"]]
    assert len(alone) == 1299 and sorted(both["general"]) == sorted(alone)


def test_mean_pooling_ignores_padding(tmp_path: Path, queries: dict[str, list[str]]) -> None:
    texts = [q for qs in queries.values() for q in qs]
    save_tiny_llama(tmp_path / "m", texts, seed=0)
    alone = middle_layer_embeddings(tmp_path / "m", [texts[0]], batch_size=1)
    batch = middle_layer_embeddings(tmp_path / "m", [texts[0], max(texts, key=len)], batch_size=2)
    assert alone.shape == (1, 32)
    np.testing.assert_allclose(batch[0], alone[0], rtol=1e-4, atol=1e-5)


def _study_with_models(tmp: Path, data: Path, texts: list[str]) -> KnownStudy:
    study = make_study(tmp, study_dict(data, {"mixed": {"fractions": [1]}}))
    (run,) = study.plan.runs
    (stage,) = run.stages
    base = study.dir / "models" / "b-test"
    with building(base) as out:
        save_tiny_llama(out, texts, seed=0)
    with building(study.dir / "stages" / stage) as out:
        save_tiny_llama(out, texts, seed=1)
    (study.dir / "jobs").mkdir()
    # A job file names its parent relative to the study directory.
    (study.dir / "jobs" / f"{stage}.json").write_text(json.dumps({"spec": {"parent": "models/b-test"}}))
    return study


@pytest.fixture(scope="module")
def model_study(tmp_path_factory: pytest.TempPathFactory, shared_data: Path,
                queries: dict[str, list[str]]) -> KnownStudy:
    return _study_with_models(tmp_path_factory.mktemp("tsne"), shared_data,
                              [q for qs in queries.values() for q in qs])


@pytest.mark.slow
def test_study_tsne_before_and_after(model_study: KnownStudy) -> None:
    res = load_results(model_study.dir)
    fig = study_tsne(res, 5)
    assert fig.produced, fig.note
    assert "mixed/1/m" in fig.caption


def test_tsne_is_seeded() -> None:
    x = np.random.default_rng(0).normal(size=(12, 8))
    np.testing.assert_array_equal(tsne_2d(x, seed=3), tsne_2d(x, seed=3))


def test_study_tsne_skips_an_incomplete_stage(tmp_path: Path, shared_data: Path) -> None:
    study = make_study(tmp_path, study_dict(shared_data, {"mixed": {"fractions": [1]}}))
    fig = study_tsne(load_results(study.dir), 5)
    assert not fig.produced and "not complete" in (fig.note or "")
