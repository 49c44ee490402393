"""Data layer throughput: sftmix load + validate + mix + manifest against a plain `datasets` pipeline.

Builds N ShareGPT-style records (default 200,000) by cycling the real ShareGPT
files of the shared data and perturbing each copy's first user turn (so no two
are identical), split over two JSONL files. Then, in the same run:

* sftmix: ``build_mixture`` of the two files at fraction 1 each, shuffled --
  reading, validation of every record, exact-duplicate detection, nested
  sampling, shuffling and the manifest (the write of ``data.jsonl`` is timed
  separately);
* baseline: ``datasets.load_dataset("json")`` of each file (fresh cache, which
  it writes as Arrow inside the timed load), ``concatenate_datasets`` and
  ``shuffle(seed)`` (then ``to_json`` of the mix, timed separately).

``ratio_vs_datasets`` compares the mixes in memory (``datasets`` pays for its
Arrow cache there, sftmix for its file hash and manifest);
``ratio_both_written_vs_datasets`` counts each side writing the mixed records
as JSONL too; ``ratio_with_write_vs_datasets`` counts sftmix's write only.

Each side runs ``--repeat`` times (default 3), alternating which goes first;
the figures are the medians. Prints records/s for both (wall clock; CPU
seconds of the process too, all threads counted, split into user and system
time, and the load average, since on a shared machine the wall clock depends on
the neighbours); the last line is a JSON object of the figures with
``ratio_vs_datasets`` = sftmix records/s / baseline records/s. ``runs`` lists
per run [wall, CPU, system CPU, write] seconds.

    python bench/data_bench.py [--quick] [--records N] [--repeat R]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(os.environ.get("SFTMIX_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
SOURCES = ("general/sharegpt_dpo_chosen.json", "general/fastchat_identity_sharegpt.json")


def make_records(total: int, folder: Path) -> list[Path]:
    """Write ``total`` perturbed ShareGPT records over two JSONL files; returns their paths."""
    base = []
    for rel in SOURCES:
        base += json.loads((SHARED / rel).read_text(encoding="utf-8"))
    paths = [folder / "part0.jsonl", folder / "part1.jsonl"]
    half = total // 2
    with open(paths[0], "w", encoding="utf-8") as f0, open(paths[1], "w", encoding="utf-8") as f1:
        for i in range(total):
            rec = base[i % len(base)]
            turns = [dict(t) for t in rec["conversations"]]
            first = next(t for t in turns if t["from"] == "human")
            first["value"] = f"{first['value']} (variant {i})"
            line = json.dumps({"id": f"r{i}", "conversations": turns}, ensure_ascii=False)
            (f0 if i < half else f1).write(line + "\n")
    return paths


def _clock() -> tuple[float, float, float]:
    """Wall clock, and user and system CPU seconds of the whole process (every thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), usage.ru_utime, usage.ru_stime


def _since(start: tuple[float, float, float]) -> tuple[float, float, float]:
    """(wall, CPU, system CPU) seconds since ``start``."""
    now = _clock()
    return now[0] - start[0], (now[1] - start[1]) + (now[2] - start[2]), now[2] - start[2]


def run_sftmix(paths: list[Path], out: Path) -> tuple[tuple[float, float, float], float, int]:
    from sftmix.data.mixing import build_mixture, write_mixture
    from sftmix.data.spec import MixtureSpec

    spec = MixtureSpec.model_validate({
        "seed": 0,
        "sources": [{"name": f"part{i}", "path": str(p), "format": "sharegpt"} for i, p in enumerate(paths)],
        "entries": [{"source": f"part{i}"} for i in range(len(paths))],
    })
    start = _clock()
    mixture = build_mixture(spec)
    build = _since(start)
    t1 = time.perf_counter()
    write_mixture(mixture, out)
    return build, time.perf_counter() - t1, len(mixture.examples)


def run_datasets(paths: list[Path], cache: Path) -> tuple[tuple[float, float, float], float, int]:
    import datasets

    datasets.disable_progress_bars()
    start = _clock()
    parts = [datasets.load_dataset("json", data_files=str(p), split="train", cache_dir=str(cache))
             for p in paths]
    mixed = datasets.concatenate_datasets(parts).shuffle(seed=0)
    n = len(mixed)
    loaded = _since(start)
    t1 = time.perf_counter()
    mixed.to_json(cache / "mixed.jsonl")  # the shuffled records as a file, like data.jsonl
    return loaded, time.perf_counter() - t1, n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 records (well under two minutes)")
    parser.add_argument("--records", type=int, default=None, help="number of records (default 200,000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side; medians are reported")
    args = parser.parse_args(argv)
    total = args.records or (20_000 if args.quick else 200_000)
    import datasets  # imported before timing so neither side pays the import

    runs: dict[str, list[tuple[float, ...]]] = {"sftmix": [], "datasets": []}
    load_before = os.getloadavg()[0]  # the machine may be shared: the figures depend on the neighbours
    with tempfile.TemporaryDirectory(prefix="sftmix-bench-") as tmp:
        folder = Path(tmp)
        paths = make_records(total, folder)
        size_mb = sum(p.stat().st_size for p in paths) / 1e6
        for rep in range(args.repeat):
            order = ("datasets", "sftmix") if rep % 2 == 0 else ("sftmix", "datasets")
            for side in order:
                if side == "datasets":
                    base, base_write, base_n = run_datasets(paths, folder / f"hf-cache-{rep}")
                    runs["datasets"].append((*base, base_write))
                else:
                    build, write_s, n = run_sftmix(paths, folder / f"mix-{rep}")
                    runs["sftmix"].append((*build, write_s))
    assert n == base_n == total, (n, base_n, total)
    load_after = os.getloadavg()[0]
    build_s, build_cpu, build_sys, write_s = (statistics.median(r[i] for r in runs["sftmix"]) for i in range(4))
    base_s, base_cpu, base_sys, base_write_s = (statistics.median(r[i] for r in runs["datasets"])
                                                for i in range(4))
    build_user, base_user = (statistics.median(r[1] - r[2] for r in runs[side]) for side in ("sftmix", "datasets"))
    sftmix_rate = total / build_s
    base_rate = total / base_s
    print(f"{total} ShareGPT-style records, {size_mb:.0f} MB of JSONL (datasets {datasets.__version__}); "
          f"medians of {args.repeat} runs each")
    print(f"sftmix   load+validate+mix+manifest: {build_s:7.2f} s  {sftmix_rate:10.0f} records/s"
          f"  (+ writing data.jsonl {write_s:.2f} s)")
    print(f"datasets load+concatenate+shuffle:   {base_s:7.2f} s  {base_rate:10.0f} records/s"
          f"  (its Arrow cache written inside; + to_json of the mix {base_write_s:.2f} s)")
    with_write = (base_s + base_write_s) / (build_s + write_s)
    print(f"with the mixed records written as JSONL on both sides: ratio {with_write:.2f}")
    print(f"ratio (sftmix / datasets): {sftmix_rate / base_rate:.2f} by wall clock, "
          f"{base_cpu / build_cpu:.2f} by CPU time (sftmix {build_cpu:.2f} s, datasets {base_cpu:.2f} s)")
    print(f"  system CPU (the kernel: page faults, file writes): sftmix {build_sys:.2f} s, datasets "
          f"{base_sys:.2f} s; user CPU: sftmix {build_user:.2f} s, datasets {base_user:.2f} s, "
          f"ratio {base_user / build_user:.2f}")
    print(f"load average (1 min) on {os.cpu_count()} cores: {load_before:.2f} before, {load_after:.2f} after")
    figures = {
        "records": total, "jsonl_mb": round(size_mb, 1), "repeat": args.repeat,
        "sftmix_s": round(build_s, 3), "sftmix_records_per_s": round(sftmix_rate),
        "sftmix_write_s": round(write_s, 3),
        "sftmix_with_write_records_per_s": round(total / (build_s + write_s)),
        "datasets_s": round(base_s, 3), "datasets_records_per_s": round(base_rate),
        "ratio_vs_datasets": round(sftmix_rate / base_rate, 3),
        "ratio_with_write_vs_datasets": round(total / (build_s + write_s) / base_rate, 3),
        "datasets_write_s": round(base_write_s, 3),
        "ratio_both_written_vs_datasets": round(with_write, 3),
        "sftmix_cpu_s": round(build_cpu, 3), "datasets_cpu_s": round(base_cpu, 3),
        "cpu_ratio_vs_datasets": round(base_cpu / build_cpu, 3),
        "sftmix_sys_s": round(build_sys, 3), "datasets_sys_s": round(base_sys, 3),
        "sftmix_user_s": round(build_user, 3), "datasets_user_s": round(base_user, 3),
        "user_cpu_ratio_vs_datasets": round(base_user / build_user, 3),
        "cores": os.cpu_count(), "load_1min": [round(load_before, 2), round(load_after, 2)],
        "runs": {side: [[round(x, 3) for x in r] for r in rs] for side, rs in runs.items()},
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
