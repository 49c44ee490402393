"""The planner on the reference study's presets: exact counts of runs, stages, evaluations."""

from __future__ import annotations

from pathlib import Path

import pytest

from sftmix.study.load import load_study
from sftmix.study.plan import Part, Recipe, build_plan

PAPER = Path(__file__).resolve().parents[2] / "configs" / "paper"
pytestmark = pytest.mark.usefixtures("paper_data")  # the presets read ../shared/data


@pytest.mark.parametrize(
    ("preset", "runs", "naive_stages", "stages", "naive_evals", "evals"),
    [
        # RQ1: 3 abilities x 5 fractions, nothing shared.
        ("rq1_scaling", 15, 15, 15, 45, 45),
        ("rq2_mixed", 5, 5, 5, 15, 15),
        # RQ3: a(k=1) == b(k=1) (everything full), and b(k=1/64) == c(k=1)
        # (general 1/64 + full specialist): 15 runs, 13 distinct stages.
        ("rq3_ratio", 15, 15, 13, 45, 39),
        # RQ4: 3 baselines + multi-task + sequential(3) + mixed sequential(2) + DMT 6 x 2 = 21
        # stage runs; sequential's stage 1 is the code baseline, DMT's stage 1 is mixed
        # sequential's stage 1, DMT(0)'s stage 2 is mixed sequential's stage 2: 13 distinct.
        ("rq4_strategies", 12, 21, 13, 36, 33),
        # All four: RQ2(1) is multi-task and RQ3 a/b(1); RQ3 c(1/64) is RQ2(1/64);
        # RQ1's full sources are RQ4's baselines: 56 stage runs, 40 distinct;
        # 38 distinct final stages x 3 suites = 114 evaluations of 141.
        ("all", 47, 56, 40, 141, 114),
    ],
)
def test_paper_presets_exact_counts(preset: str, runs: int, naive_stages: int, stages: int,
                                    naive_evals: int, evals: int) -> None:
    plan = build_plan(load_study(PAPER / f"{preset}.yaml"))
    assert len(plan.runs) == runs
    assert plan.naive_stages == naive_stages
    assert len(plan.stages) == stages
    assert plan.naive_evals == naive_evals
    assert len(plan.evals) == evals


def _run(plan, prefix: str, suffix: str = "model/s0"):
    (run,) = [r for r in plan.runs if r.name == prefix + suffix]
    return run


def test_named_merges_in_full_preset() -> None:
    plan = build_plan(load_study(PAPER / "all.yaml"))
    dmt = [r for r in plan.runs if r.coords.get("strategy") == "dmt"]
    assert len(dmt) == 6
    assert len({r.stages[0] for r in dmt}) == 1, "DMT stage 1 shared across every k"
    mixseq = _run(plan, "strategies/mixed-sequential/")
    assert all(r.stages[0] == mixseq.stages[0] for r in dmt)
    dmt0 = next(r for r in dmt if r.coords["k"] == 0)
    assert dmt0.stages == mixseq.stages, "DMT(k=0) is mixed sequential"
    multi = _run(plan, "strategies/multi-task/")
    assert _run(plan, "mixed/1/").stages == multi.stages
    assert _run(plan, "ratio/a/1/").stages == multi.stages
    assert _run(plan, "ratio/b/1/").stages == multi.stages
    for ability in ("maths", "code", "general"):
        assert _run(plan, f"scaling/{ability}/1/").stages == _run(plan, f"strategies/{ability}-only/").stages
    seq = _run(plan, "strategies/sequential/")
    assert seq.stages[0] == _run(plan, "scaling/code/1/").stages[0]
    # Parents chain: each stage after the first starts from the previous one.
    for run in plan.runs:
        for parent, child in zip(run.stages, run.stages[1:], strict=False):
            assert plan.stages[child].parent == parent


def test_keys_change_with_what_produced_them(tmp_path: Path) -> None:
    base = load_study(PAPER / "rq2_mixed.yaml")
    keys = set(build_plan(base).stages)
    changed = base.model_copy(deep=True)
    changed.training.learning_rate = 1e-4
    assert keys.isdisjoint(build_plan(changed).stages)
    reseeded = base.model_copy(deep=True)
    reseeded.seeds = [1]
    assert keys.isdisjoint(build_plan(reseeded).stages)
    two_seeds = base.model_copy(deep=True)
    two_seeds.seeds = [0, 1]
    assert len(build_plan(two_seeds).stages) == 2 * len(keys)


def test_writing_a_default_never_changes_a_key(tmp_path: Path, shared_data: Path) -> None:
    """A default written out (training, tiny model, source) resolves to the same spec and key."""
    from sftmix.train.config import TinyLlamaConfig, TrainSettings

    study = tmp_path / "study.yaml"
    text = f"""
name: defaults
abilities:
  maths: {{data: {{path: {shared_data}/gsm8k/train.jsonl, format: gsm8k}}, evals: [gsm8k]}}
  general: {{data: {{path: {shared_data}/general/messages_kto_positive.jsonl, format: messages}}, evals: [ifeval]}}
models: [{{name: m, tiny: {{vocab_size: 400, hidden: 32, layers: 2, heads: 2}}}}]
training: {{max_steps: 4}}
evaluation:
  gsm8k: {{path: {shared_data}/gsm8k/test.jsonl}}
  ifeval: {{path: {shared_data}/eval/ifeval/input_data.jsonl}}
designs: {{mixed: {{fractions: [1/64]}}}}
runs:
  - name: r
    stages: [{{name: a, data: [{{ability: maths, count: 8}}]}}]
"""
    study.write_text(text)
    plain = build_plan(load_study(study))
    defaults = TrainSettings()
    tiny = TinyLlamaConfig()
    study.write_text(text.replace(
        "training: {max_steps: 4}",
        f"training: {{max_steps: 4, max_length: {defaults.max_length}, epochs: 3, "
        f"learning_rate: {defaults.learning_rate}, packing: true}}").replace(
        "heads: 2}", f"heads: 2, max_position: {tiny.max_position}, seed: {tiny.seed}}}").replace(
        "format: gsm8k}", "format: gsm8k, on_error: raise, split: train}").replace(
        "stages: [{name: a, data: [{ability: maths, count: 8}]}]",
        "stages: [{name: a, data: [{ability: maths, count: 8}], training: {warmup_ratio: 0.03}}]"))
    explicit = build_plan(load_study(study))
    assert set(explicit.stages) == set(plain.stages) and len(plain.stages) == 2
    assert set(explicit.evals) == set(plain.evals)
    assert set(explicit.models) == set(plain.models) and set(explicit.mixtures) == set(plain.mixtures)
    # ... while a value that differs from the default does change it.
    study.write_text(text.replace("training: {max_steps: 4}", "training: {max_steps: 4, max_length: 1024}"))
    assert set(build_plan(load_study(study)).stages).isdisjoint(plain.stages)


def test_recipe_k_zero_replays_nothing() -> None:
    spec = Recipe.of([Part("code", 1.0), Part("maths", 1.0)], 0)
    assert Recipe.of([Part("general", 1.0)], 0, (spec, 0.0)) == Recipe.of([Part("general", 1.0)], 0)
    assert Recipe.of([Part("b", 1.0), Part("a", 0.5)], 0) == Recipe.of([Part("a", 0.5), Part("b", 1.0)], 0)


def test_free_form_runs_share_and_reference_stages(tmp_path: Path, shared_data: Path) -> None:
    study = tmp_path / "study.yaml"
    study.write_text(f"""
name: free
abilities:
  maths: {{data: {{path: {shared_data}/gsm8k/train.jsonl, format: gsm8k}}, evals: [gsm8k]}}
  general: {{data: {{path: {shared_data}/general/sharegpt_dpo_chosen.json, format: sharegpt}}, evals: [ifeval]}}
models: [{{name: m, path: smollm2}}]
evaluation:
  gsm8k: {{path: {shared_data}/gsm8k/test.jsonl}}
  ifeval: {{path: {shared_data}/eval/ifeval/input_data.jsonl}}
runs:
  - name: warm
    stages:
      - {{name: s1, data: [{{ability: maths, count: 100}}]}}
      - {{name: s2, data: [{{ability: general}}], replay: {{stage: s1, fraction: 0.5}}}}
  - name: branch
    stages:
      - {{name: b1, after: warm.s1, data: [{{ability: general, fraction: 1/4}}]}}
""")
    plan = build_plan(load_study(study))
    warm = _run(plan, "runs/warm/", "m/s0")
    branch = _run(plan, "runs/branch/", "m/s0")
    assert len(warm.stages) == 2 and len(branch.stages) == 2
    assert branch.stages[0] == warm.stages[0]
    assert len(plan.stages) == 3
    s2 = plan.stages[warm.stages[1]]
    assert s2.recipe.replay is not None and s2.recipe.replay[1] == 0.5


def test_plan_cost_counts_each_distinct_stage_once() -> None:
    from sftmix.study.cost import plan_cost, source_stats

    plan = build_plan(load_study(PAPER / "rq4_strategies.yaml"))
    cost = plan_cost(plan)
    stats = source_stats(plan.study)
    n = {a: stats[a].examples for a in stats}
    mean = {a: stats[a].tokens_per_example for a in stats}
    assert n["maths"] == 7473 and n["general"] == 300
    # Every single-source full stage costs its whole source times 3 epochs.
    single = {a: n[a] * mean[a] * 3 for a in n}
    assert cost.plan_tokens == pytest.approx(sum(cost.stage_tokens.values()))
    naive = sum(cost.stage_tokens[k] for run in plan.runs for k in run.stages)
    assert cost.naive_tokens == pytest.approx(naive)
    assert cost.naive_tokens > cost.plan_tokens
    baseline = _run(plan, "strategies/general-only/")
    assert cost.stage_tokens[baseline.stages[0]] == pytest.approx(single["general"])
    dmt_full = next(r for r in plan.runs if r.coords.get("k") == 1.0)
    specialist = single["code"] + single["maths"]
    assert cost.stage_tokens[dmt_full.stages[1]] == pytest.approx(single["general"] + specialist)


def test_designs_do_what_is_written_and_plan_says_what_is_implied(tmp_path: Path, shared_data: Path) -> None:
    from sftmix.study.summary import plan_summary

    text = (PAPER / "rq4_strategies.yaml").read_text()
    start = text.index("designs:")
    alone = tmp_path / "dmt.yaml"
    alone.write_text(text[:start].replace("../../../shared/data", str(shared_data))
                     + "designs:\n  strategies: {dmt: {ks: [1/64]}}\n")
    plan = build_plan(load_study(alone))
    summary = plan_summary(plan)
    assert "baselines, multi_task, sequential, mixed_sequential run by default" in summary
    assert len(plan.runs) == 3 + 1 + 1 + 1 + 1
    off = alone.read_text().replace(
        "{dmt: {ks: [1/64]}}",
        "{dmt: {ks: [1/64]}, baselines: false, multi_task: false, sequential: false, mixed_sequential: false}")
    alone.write_text(off + "  scaling: false\n")
    plan = build_plan(load_study(alone))
    assert [r.name for r in plan.runs] == ["strategies/dmt/1/64/model/s0"]
    assert "by default" not in plan_summary(plan)


def test_plan_cost_stops_at_max_steps(tmp_path: Path) -> None:
    from sftmix.study.cost import plan_cost

    study = load_study(PAPER / "rq2_mixed.yaml")
    full = plan_cost(build_plan(study))
    study.training.max_steps = 2
    capped = plan_cost(build_plan(study))
    settings = next(iter(build_plan(study).stages.values())).training
    per_stage = 2 * settings.global_batch_size * settings.max_length
    assert all(t <= per_stage for t in capped.stage_tokens.values())
    assert capped.plan_tokens == pytest.approx(sum(min(per_stage, t) for t in full.stage_tokens.values()))
    assert capped.plan_tokens < full.plan_tokens
