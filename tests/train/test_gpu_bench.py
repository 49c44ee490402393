"""bench/gpu_train_bench.py in its CPU mode: assets prepared from the GGUF and real data, then
sftmix, TRL default and TRL packed trained, and generation compared, in one run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "gpu_train_bench.py"


@pytest.mark.slow
@pytest.mark.real_model
def test_quick_cpu_run_reports_the_figures(tmp_path: Path, shared_data: Path) -> None:
    assets = tmp_path / "assets"
    prepared = subprocess.run([sys.executable, str(BENCH), "--prepare", "--assets", str(assets),
                               "--data", str(shared_data)], capture_output=True, text=True)
    assert prepared.returncode == 0, prepared.stderr[-3000:]
    # What a GPU machine without gguf or ../shared reads: no GGUF, no data folder needed.
    assert {p.name for p in assets.iterdir()} == {"smollm2", "mixture.jsonl", "gsm8k_prompts.jsonl"}
    run = subprocess.run([sys.executable, str(BENCH), "--device", "cpu", "--quick",
                          "--ablations", "none", "--assets", str(assets),
                          "--gen-dtypes", "bfloat16,float32",  # what a CUDA run compares
                          "--data", str(tmp_path / "absent")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    figures = json.loads(run.stdout.strip().splitlines()[-1])
    for key in ("mfu", "tokens_per_s", "ratio_vs_trl_packed", "peak_mem_gb"):
        assert isinstance(figures[key], float) and figures[key] > 0, key
    assert set(figures["smollm2"]) == {"sftmix", "trl_default", "trl_packed"}
    for trl in ("trl_default", "trl_packed"):  # on the CPU the best kernel is sdpa: one run
        assert figures["smollm2"][trl]["attention"] == "sdpa"
        assert figures["smollm2"][trl]["kernels"] == {
            "sdpa": round(figures["smollm2"][trl]["tokens_per_s"], 1)}
    assert set(figures["llama1b"]) == {"sftmix"}
    for run_figures in (*figures["smollm2"].values(), figures["llama1b"]["sftmix"]):
        assert run_figures["trainable_tokens"] > 0 and 0 < run_figures["mfu"] < 1
    assert figures["ratio_vs_trl_packed"] == pytest.approx(
        figures["tokens_per_s"] / figures["smollm2"]["trl_packed"]["tokens_per_s"], rel=0.02)
    assert figures["gen_tokens"] > 0 and figures["greedy_outputs_identical"] is True
    assert figures["gen_dtype"] == "bfloat16" and set(figures["generation"]) == {"bfloat16", "float32"}
    fp32 = figures["generation"]["float32"]
    assert fp32["outputs_differing"] == 0 and fp32["first_divergence_tokens"] == []
    assert "outputs_differing_hf_half_batch" in figures["generation"]["bfloat16"]
    assert figures["gen_ratio_vs_hf_batched_fp32"] == fp32["ratio_vs_hf_batched"] > 0


def test_the_generate_baseline_decodes_with_a_cache(monkeypatch) -> None:
    # The bench's models come from a training config (use_cache=False); the transformers
    # baseline must still decode one new token per step, not recompute the whole sequence.
    monkeypatch.syspath_prepend(str(BENCH.parent))
    from gpu_train_bench import hf_batched_generate
    from tests.train.helpers import smollm2_tokenizer, tiny_llama

    model = tiny_llama(smollm2_tokenizer().vocab_size).eval()
    model.config.use_cache = False
    model.generation_config.use_cache = False
    widths: list[int] = []
    model.model.register_forward_pre_hook(
        lambda module, args, kwargs: widths.append(kwargs["input_ids"].shape[1]), with_kwargs=True)
    prompts = [[5, 6, 7, 8, 9], [10, 11, 12]]
    texts = hf_batched_generate(model, smollm2_tokenizer(), prompts, 2, 6, pad=0)
    assert len(texts) == 2
    assert widths[0] == 5 and widths[1:] == [1] * (len(widths) - 1) and len(widths) == 6


@pytest.mark.slow
def test_trl_keeps_its_fastest_kernel_and_records_one_that_fails(monkeypatch,
                                                                  shared_data: Path) -> None:
    # On a GPU, TRL runs with the machine's best kernel and with sdpa; a kernel its path
    # rejects is recorded, not fatal, and the rate reported is that of a kernel that ran.
    monkeypatch.syspath_prepend(str(BENCH.parent))
    from gpu_train_bench import best_trl, build_model, model_config, parse_args
    from tests.train.helpers import code_alpaca_examples, gsm8k_examples, smollm2_tokenizer

    tokenizer = smollm2_tokenizer()
    base = tiny_llama_config(tokenizer.vocab_size)
    args = parse_args(["--device", "cpu", "--quick", "--steps", "1", "--warmup", "1"])
    state = build_model(model_config(base, "smollm2", True, "sdpa"), None, "sdpa").state_dict()
    examples = gsm8k_examples(shared_data, 6) + code_alpaca_examples(shared_data, 6)
    result = best_trl("smollm2", "trl_packed", base, state, examples, tokenizer, args,
                      packing=True, kernels=("no_such_kernel", "sdpa"), precision="fp32")
    assert result["attention"] == "sdpa" and result["tokens_per_s"] > 0
    assert set(result["kernels"]) == {"no_such_kernel", "sdpa"}
    assert "no_such_kernel" in result["kernels"]["no_such_kernel"]  # the error, as text
    assert result["kernels"]["sdpa"] == round(result["tokens_per_s"], 1)


def tiny_llama_config(vocab_size: int):
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=vocab_size, hidden_size=64, intermediate_size=128,
                       num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
