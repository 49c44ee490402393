"""``sftmix data get``: the reference study's public datasets, in the formats sftmix reads.

Each dataset is loaded through ``datasets.load_dataset`` -- from the Hugging Face hub,
or with ``--from`` from a local folder or file that ``load_dataset`` reads (a hub
snapshot, a folder of JSON/JSONL/Parquet files, one such file, or a ``save_to_disk``
folder) -- and written as JSONL under the output folder, laid out as ``../shared/data``
is (``gsm8k/train.jsonl``, ``eval/humaneval/HumanEval.jsonl``, ...), so that the paper
configs and ``sftmix eval --data-dir`` read it as it is. The evaluation sets bundled
with sftmix are copied from the bundled files, byte for byte, without network.

``manifest.json`` in the output folder records, per dataset, its source (hub id,
config and the commit it was read at; or the local path and its sha256; or the
bundled file's origin), the date, and per file written its split, rows, bytes,
sha256 and the records sftmix's reader rejects. The manifest is the mark of
completion: a dataset's files are written under temporary names, checked by
reading them back with sftmix's reader, its old manifest entry is removed, the
files are renamed into place, and the new entry is written last. A dataset whose
entry is missing or whose files do not match their hashes is not complete and is
fetched again; a complete one from the same source is kept.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sftmix import strict_json
from sftmix.artifacts import PARTIAL, fsync_dir, write_json_atomic
from sftmix.errors import DataError
from sftmix.hashing import file_sha256
from sftmix.registry import Registry

log = logging.getLogger(__name__)

DEFAULT_OUT = Path("data/paper")
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class PaperDataset:
    """One public dataset of the reference study and where its files go."""

    what: str
    format: str | None  # sftmix reader of the written files (None: not a record file)
    splits: Mapping[str, str] = field(default_factory=dict)  # split -> file, relative to the output
    columns: tuple[str, ...] = ()  # the columns the reader needs; others are not written
    hub: str | None = None
    config: str | None = None
    data_files: str | None = None  # one file of the hub repository, when it holds several
    bundled: tuple[str, ...] = ()  # files copied from sftmix's bundled benchmarks


DATASETS: Registry[PaperDataset] = Registry("dataset")
DATASETS.add("gsm8k", PaperDataset(
    "GSM8K train (7,473) and test (1,319): the maths data and benchmark", "gsm8k",
    {"train": "gsm8k/train.jsonl", "test": "gsm8k/test.jsonl"}, ("question", "answer"),
    hub="openai/gsm8k", config="main"))
DATASETS.add("code_alpaca", PaperDataset(
    "Code Alpaca (20,022 instruction/input/output records): the code data", "alpaca",
    {"train": "code/code_alpaca.jsonl"}, ("instruction", "input", "output"),
    hub="sahil2801/CodeAlpaca-20k"))
DATASETS.add("sharegpt", PaperDataset(
    "ShareGPT conversations (Vicuna's cleaned split): the general data", "sharegpt",
    {"train": "general/sharegpt.jsonl"}, ("id", "conversations"),
    hub="anon8231489123/ShareGPT_Vicuna_unfiltered",
    data_files="ShareGPT_V3_unfiltered_cleaned_split.json"))
DATASETS.add("humaneval", PaperDataset(
    "HumanEval (164 problems): the code benchmark", "humaneval",
    bundled=("eval/humaneval/HumanEval.jsonl",)))
DATASETS.add("mtbench", PaperDataset(
    "MT-Bench: 80 questions, reference answers, judge prompts", None,
    bundled=("eval/mt_bench/question.jsonl", "eval/mt_bench/reference_answer_gpt-4.jsonl",
             "eval/mt_bench/judge_prompts.jsonl")))
PAPER = ("gsm8k", "code_alpaca", "sharegpt", "humaneval", "mtbench")


def read_manifest(out: Path) -> dict[str, Any]:
    path = out / MANIFEST
    if not path.is_file():
        return {"format": 1, "datasets": {}}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise DataError(f"{path}: not a readable manifest ({exc}); delete it to fetch every "
                        "dataset again") from None
    manifest.setdefault("datasets", {})
    return manifest


def is_complete(out: Path, entry: Mapping[str, Any] | None) -> bool:
    """Every file the manifest entry lists is there with its recorded sha256."""
    if not entry or not entry.get("files"):
        return False
    return all((out / rel).is_file() and file_sha256(out / rel) == info["sha256"]
               for rel, info in entry["files"].items())


def get(name: str, out: Path, *, source: Path | None = None, revision: str | None = None,
        say: Callable[[str], None] = print) -> dict[str, Any]:
    """Bring dataset ``name`` into ``out`` (from ``source`` when given); returns its manifest entry."""
    spec = DATASETS.get(name)
    if source is not None and spec.bundled:
        raise DataError(f"--from {source}: {name} is bundled with sftmix and needs no download; "
                        f"run 'sftmix data get {name}' without --from")
    old = read_manifest(out)["datasets"].get(name)
    if old and _same_source(old["source"], spec, source, revision) and is_complete(out, old):
        say(f"{name}: complete in {out} (same source, files match the manifest), kept")
        return old
    origin = _origin(name, spec, source, revision)
    targets = [out / rel for rel in (*spec.splits.values(), *spec.bundled)]
    _discard_partials(targets)  # left by an interrupted earlier get
    try:
        if spec.bundled:
            files = _copy_bundled(spec, out)
        else:
            files = _write_splits(name, spec, _load(name, spec, source, origin), out)
        entry = {"what": spec.what, "format": spec.format, "source": origin,
                 "date": datetime.datetime.now(datetime.UTC).date().isoformat(),
                 "files": {rel: info for rel, (_tmp, info) in files.items()}}
        _publish(out, name, files, entry)
    finally:
        _discard_partials(targets)
    for rel, info in entry["files"].items():
        split = f"{info['split']}: " if info.get("split") else ""
        say(f"{name}: {split}{info['rows']:,} rows -> {out / rel} (sha256 {info['sha256'][:16]})")
        bad = info.get("invalid") or {}
        if bad.get("count"):
            say(f"  {bad['count']:,} record(s) the {spec.format} reader rejects, kept as published "
                f"(read them with on_error: skip); the first: {bad['first_reasons'][0]}")
    return entry


# ---- where a dataset comes from -------------------------------------------------------------

def _same_source(recorded: Mapping[str, Any], spec: PaperDataset, source: Path | None,
                 revision: str | None) -> bool:
    """Whether a complete entry answers this request, without asking the hub: a hub dataset
    read at any commit does unless ``revision`` names another one."""
    if spec.bundled:
        return "bundled" in recorded
    if source is not None:
        from sftmix.data.sources import source_sha256

        return (recorded.get("local") == str(source.resolve()) and source.exists()
                and recorded.get("sha256") == source_sha256(source.resolve()))
    wanted = {"hub": spec.hub, "config": spec.config, "data_files": spec.data_files}
    return (all(recorded.get(k) == v for k, v in wanted.items())
            and revision in (None, recorded.get("revision")))


def _origin(name: str, spec: PaperDataset, source: Path | None, revision: str | None) -> dict[str, Any]:
    if spec.bundled:
        from sftmix.bundled import bundled_dir

        listed = json.loads((bundled_dir() / "manifest.json").read_text(encoding="utf-8"))
        by_path = {f["path"]: f for f in listed["files"]}
        return {"bundled": "sftmix/resources/benchmarks",
                "origin": sorted({by_path[rel]["origin"] for rel in spec.bundled if rel in by_path})}
    if source is not None:
        from sftmix.data.sources import source_sha256

        if not source.exists():
            raise DataError(f"--from {source}: no such file or folder; expected a local copy of "
                            f"{spec.hub} that datasets.load_dataset reads")
        return {"local": str(source.resolve()), "sha256": source_sha256(source.resolve())}
    return {"hub": spec.hub, "config": spec.config, "data_files": spec.data_files,
            "revision": _hub_revision(name, spec, revision)}


def offline_help(name: str, spec: PaperDataset) -> str:
    """What to do without network, in one paragraph."""
    return (f"Without network: run 'sftmix data get' on a machine that has it and copy its output "
            f"folder (data/paper) here; or download the dataset there ('hf download {spec.hub} "
            f"--repo-type dataset --local-dir {name}', or datasets.load_dataset(...).save_to_disk"
            f"('{name}')), copy that folder here and run 'sftmix data get {name} --from {name}'. "
            "--from takes any local folder or file that datasets.load_dataset reads (JSON, JSONL, "
            "Parquet, CSV). The paper configs read data/paper; SFTMIX_MATHS_DATA, "
            "SFTMIX_CODE_DATA, SFTMIX_GENERAL_DATA and SFTMIX_EVAL_DIR point them elsewhere.")


def _hub_revision(name: str, spec: PaperDataset, revision: str | None) -> str:
    """The commit of the hub repository to read (the newest unless ``revision`` pins one)."""
    from huggingface_hub import HfApi

    try:
        info = HfApi().dataset_info(spec.hub, revision=revision)
    except Exception as exc:  # offline, unknown name, no access: the user's way out is the same
        raise DataError(f"{name}: could not reach {spec.hub} on the Hugging Face hub "
                        f"({_reason(exc)}). {offline_help(name, spec)}") from None
    return str(info.sha)


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _load(name: str, spec: PaperDataset, source: Path | None, origin: Mapping[str, Any]) -> Any:
    """A DatasetDict holding the splits ``spec`` needs."""
    import datasets

    try:
        if source is None:
            loaded = datasets.load_dataset(spec.hub, spec.config, data_files=spec.data_files,
                                           revision=origin["revision"])
        else:
            loaded = _load_local(spec, source)
    except DataError:
        raise
    except Exception as exc:  # datasets raises many unrelated types for unreadable input
        where = f"--from {source}" if source is not None else f"{spec.hub} on the hub"
        raise DataError(f"{name}: {where} could not be read by datasets.load_dataset "
                        f"({_reason(exc)}). {offline_help(name, spec)}") from None
    if isinstance(loaded, datasets.Dataset):
        loaded = datasets.DatasetDict({"train": loaded})
    missing = [s for s in spec.splits if s not in loaded]
    if missing:
        where = f"--from {source}" if source is not None else spec.hub
        raise DataError(f"{name}: {where} holds the split(s) {', '.join(loaded) or 'none'}; "
                        f"expected {', '.join(spec.splits)} (a folder with one file per split, "
                        "named after it -- train.jsonl, test.jsonl -- or the hub's own layout)")
    return loaded


def _load_local(spec: PaperDataset, source: Path) -> Any:
    import datasets

    if source.is_file():
        kind = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}.get(
            "".join(source.suffixes[-2:-1]) if source.suffix == ".gz" else source.suffix)
        if kind is None:
            raise DataError(f"--from {source}: unknown file type; expected a .json, .jsonl, "
                            ".parquet or .csv file, or a folder")
        return datasets.load_dataset(kind, data_files=str(source))
    if (source / "dataset_dict.json").is_file() or (source / "state.json").is_file():
        return datasets.load_from_disk(str(source))
    if spec.data_files and (source / spec.data_files).is_file():
        return datasets.load_dataset(str(source), data_files=spec.data_files)
    names = datasets.get_dataset_config_names(str(source))
    config = spec.config if spec.config in names else None
    return datasets.load_dataset(str(source), config)


# ---- writing --------------------------------------------------------------------------------

def _partial(path: Path) -> Path:
    """A temporary name beside ``path`` that keeps its suffix (the readers go by it)."""
    return path.with_name(f"{path.stem}{PARTIAL}{os.getpid()}{path.suffix}")


def _write_splits(name: str, spec: PaperDataset, loaded: Any,
                  out: Path) -> dict[str, tuple[Path, dict[str, Any]]]:
    files = {}
    for split, rel in spec.splits.items():
        ds = loaded[split]
        absent = [c for c in spec.columns if c not in ds.column_names]
        if absent:
            raise DataError(f"{name}: split {split} has the columns {', '.join(ds.column_names)}; "
                            f"expected {', '.join(spec.columns)} (missing: {', '.join(absent)})")
        tmp = _partial(out / rel)
        tmp.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as fh:
            for row in ds.select_columns(list(spec.columns)):  # row by row: ShareGPT is large
                fh.write(strict_json.dumps(_clean(row), ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        files[rel] = (tmp, {"split": split, "rows": ds.num_rows, **_describe(tmp),
                            "invalid": _invalid(tmp, spec.format, out / rel)})
    return files


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    """Turns of a conversation keep only their speaker and text: ``load_dataset`` gives every
    turn the union of the keys any turn has, as nulls."""
    turns = row.get("conversations")
    if isinstance(turns, list):
        row = {**row, "conversations": [{"from": t.get("from"), "value": t.get("value")}
                                        for t in turns if isinstance(t, dict)]}
    return row


def _copy_bundled(spec: PaperDataset, out: Path) -> dict[str, tuple[Path, dict[str, Any]]]:
    from sftmix.bundled import bundled_dir

    files = {}
    for rel in spec.bundled:
        tmp = _partial(out / rel)
        tmp.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(bundled_dir() / rel, tmp)
        with open(tmp, "rb") as fh:
            rows = sum(1 for line in fh if line.strip())
        info: dict[str, Any] = {"rows": rows, **_describe(tmp)}
        if spec.format is not None:
            info["invalid"] = _invalid(tmp, spec.format, out / rel)
        files[rel] = (tmp, info)
    return files


def _describe(path: Path) -> dict[str, Any]:
    return {"bytes": path.stat().st_size, "sha256": file_sha256(path)}


def _invalid(path: Path, fmt: str, final: Path) -> dict[str, Any]:
    """Records sftmix's reader rejects in the written file ``path`` (to be ``final``): the file
    is read back as a study would read it."""
    from sftmix.data.sources import load_source
    from sftmix.data.spec import SourceSpec

    name = "_".join(final.with_suffix("").parts[-2:])
    spec = SourceSpec(name=name, path=str(path), format=fmt, on_error="skip")
    skipped = load_source(spec).report()["skipped"]
    return {**skipped, "first_reasons": [r.replace(str(path), str(final))
                                         for r in skipped["first_reasons"]]}


def _publish(out: Path, name: str, files: Mapping[str, tuple[Path, dict[str, Any]]],
             entry: dict[str, Any]) -> None:
    """Old entry out, files renamed into place, new entry in: the manifest never lists a file
    that is not the one it describes."""
    manifest = read_manifest(out)
    if manifest["datasets"].pop(name, None) is not None:
        write_json_atomic(out / MANIFEST, manifest)
    for rel, (tmp, _info) in files.items():
        os.replace(tmp, out / rel)
        fsync_dir((out / rel).parent)
    manifest = read_manifest(out)
    manifest["datasets"][name] = entry
    write_json_atomic(out / MANIFEST, manifest)


def _discard_partials(targets: list[Path]) -> None:
    """Temporary files of ``targets`` (nothing once they are published)."""
    for target in targets:
        if target.parent.is_dir():
            for path in target.parent.glob(f"{target.stem}{PARTIAL}*{target.suffix}"):
                path.unlink(missing_ok=True)
