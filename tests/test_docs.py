"""The documentation, executed: every shell command and YAML example of README.md and docs/.

Fenced blocks are found in README.md and every ``docs/**/*.md`` (new pages are
picked up by themselves). In a block, a line starting with ``$ `` or with a
known command word is a command; the lines after a ``$`` command are its output,
except after ``$ cat FILE``, whose lines are the file and are written into the
environment. Every ``sftmix`` command runs as written, in document order, in a
fresh folder next to a ``shared/data`` link, with ``SMALL`` arguments appended
so that it finishes in seconds (``--set training.max_steps=1``, ``--limit 1``,
...); paths the documentation uses for the reader's own files are the files of
``PLACEHOLDERS``; the MT-Bench judge is a real OpenAI-compatible server on
loopback. Every YAML block is parsed and validated with the model it is an
example of.

A command run at its documented size must print the output lines the docs
show after it (``...`` elides).

A command or block that must not run here is listed in ``EXCLUDED`` with the
reason; anything neither runnable nor excluded fails the test, so a new page
of documentation either runs or says why not. Python and JSON blocks are not
covered (they are library examples and measured outputs).
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import paper_data_env
from tests.eval.fake_openai import FakeOpenAI

ROOT = Path(__file__).resolve().parents[1]

# Command prefixes (as written in the docs, after "$ ") that are not run, and why.
EXCLUDED: dict[str, str] = {
    "make demo": "the whole lab study (about 13 minutes); its parts are tested in tests/lab and "
                 "tests/study",
    "make test": "the test suite itself, this test included",
    "accelerate launch": "multi-process and multi-GPU training; tests/train/test_distributed.py "
                         "runs a schedule under two processes",
    "sftmix run study.yaml -o /shared/": "a study on a SLURM cluster; tests/study/test_slurm.py runs "
                                         "the same commands on a real one-node SLURM",
    "sftmix status /shared/": "the status of that cluster study; tests/study/test_slurm.py checks it",
}
# Whole commands (not prefixes) that are not run, and why.
EXCLUDED_COMMANDS: dict[str, str] = {
    "sftmix data get": "downloads from the Hugging Face hub, which tests cannot reach; "
                       "tests/data/test_get.py runs data get offline on local copies, and "
                       "docs/data.md's `--from` example runs here",
}
SYNOPSIS = ("a synopsis (placeholders such as STUDY_DIR or [--option]), not a command; the "
            "commands it describes run where the docs give them with real arguments")
# A word of a synopsis: an upper-case placeholder (STUDY_DIR, CONFIG.yaml) or an optional part.
_PLACEHOLDER = re.compile(r"^(\[.*|[A-Z][A-Z0-9_]*(\.[a-z]+)?\]?)$")

# Command words recognised in a block without a "$ " prompt.
COMMAND_WORDS = ("sftmix", "make", "accelerate", "python", "pip", "cat")

# Paths the docs use for the reader's own files -> what stands for them here.
PLACEHOLDERS: dict[str, str] = {
    "data/gsm8k_train.jsonl": "../shared/data/gsm8k/train.jsonl",
    "downloads/gsm8k": "../shared/data/gsm8k",
}


def _small_train(args: list[str], env: Env) -> list[str]:
    return [*args, "--set", "training.max_steps=1"]


def _small_eval(args: list[str], env: Env) -> list[str]:
    extra = ["--limit", "1", "--max-new-tokens", "4"]
    suites = args[args.index("--suite") + 1] if "--suite" in args else "gsm8k,humaneval,ifeval,mtbench"
    if "mtbench" in suites.split(","):
        extra += ["--set", "mtbench.repetitions=1"]
    return [*args, *extra]


def _small_run(args: list[str], env: Env) -> list[str]:
    """A study cut to one run of one model trained from the quick start's tiny Llama."""
    from sftmix.config import read_yaml

    study, _ = read_yaml(env.cwd / args[1])
    suites = {s for a in study["abilities"].values() for s in a.get("evals", [])}
    ability = next(iter(study["abilities"]))
    extra = ["--limit", "1", "--set", "training.max_steps=1", "--set", "training.max_length=256",
             "--set", f"models=[{{name: model, path: {env.model()}}}]",
             "--set", f"designs={{scaling: {{fractions: [1/256], abilities: [{ability}]}}}}"]
    for suite in sorted(suites):
        extra += ["--set", f"evaluation.{suite}.max_new_tokens=4"]
    if "mtbench" in suites:
        extra += ["--set", "evaluation.mtbench.repetitions=1"]
    return [*args, *extra]


# sftmix subcommand -> what makes it small; subcommands not listed run as written.
SMALL: dict[str, Callable[[list[str], Env], list[str]]] = {
    "train": _small_train,
    "eval": _small_eval,
    "run": _small_run,
}


@dataclass
class Block:
    file: Path
    line: int  # of the opening fence
    lang: str
    lines: list[str]

    @property
    def where(self) -> str:
        return f"{self.file.relative_to(ROOT)}:{self.line}"


@dataclass
class Env:
    cwd: Path
    run: Callable[[list[str]], tuple[int, str]]
    built: dict[str, Path] = field(default_factory=dict)

    def model(self) -> Path:
        """The quick start's trained tiny model (trained here if no command did yet)."""
        path = self.cwd / "runs" / "example" / "02-general"
        if not (path / "COMPLETE.json").is_file():
            code, out = self.run(_small_train(["train", "configs/train/example.yaml"], self))
            assert code == 0, out
        return path.resolve()


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def blocks(path: Path) -> Iterator[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^\s*(```+|~~~+)\s*([\w+-]*)", lines[i])
        if m:
            fence, start = m.group(1), i
            i += 1
            body = []
            while i < len(lines) and not lines[i].strip().startswith(fence):
                body.append(lines[i])
                i += 1
            yield Block(path, start + 1, m.group(2).lower(), body)
        i += 1


def _is_command(line: str) -> bool:
    return line.startswith("$ ") or line.split(" ", 1)[0] in COMMAND_WORDS


def commands(block: Block) -> list[tuple[str, list[str]]]:
    """(command, the lines after it up to the next command) for a shell block; [] for output."""
    out: list[tuple[str, list[str]]] = []
    prompt = any(line.startswith("$ ") for line in block.lines)
    pending = ""
    for raw in block.lines:
        line = raw.rstrip()
        if pending:
            line, pending = pending + " " + line.strip(), ""
        if line.endswith("\\"):
            pending = line[:-1].rstrip()
            continue
        if prompt and not line.startswith("$ "):
            if out:
                out[-1][1].append(raw)
            continue
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not _is_command(line):
            if not out:
                return []  # a block of output, not of commands
            continue
        text = line.removeprefix("$ ")
        text = re.sub(r"\s+#\s.*$", "", text).strip()  # a trailing comment
        out.append((text, []))
    return out


def shell_blocks() -> list[Block]:
    return [b for f in doc_files() for b in blocks(f)
            if b.lang in ("", "console", "bash", "sh", "shell") and commands(b)]


def yaml_blocks() -> list[Block]:
    return [b for f in doc_files() for b in blocks(f) if b.lang in ("yaml", "yml")]


def excluded(command: str) -> str | None:
    """Why ``command`` is not run (EXCLUDED, or a synopsis), or None."""
    why = EXCLUDED_COMMANDS.get(command) or next(
        (why for prefix, why in EXCLUDED.items() if command.startswith(prefix)), None)
    if why is None and any(_PLACEHOLDER.match(word) for word in command.split()[1:]):
        why = SYNOPSIS
    return why


def test_synopses_are_told_from_commands() -> None:
    assert excluded("sftmix report STUDY_DIR [-o OUT] [--weights maths=1]") == SYNOPSIS
    assert excluded("python -m sftmix.study.worker JOB.json") == SYNOPSIS
    assert excluded("sftmix train configs/train/example.yaml -o runs/example") is None
    assert excluded("SFTMIX_MODEL=x sftmix run configs/paper/all.yaml") is None
    assert excluded("sftmix data get") is not None
    assert excluded("sftmix data get gsm8k --from downloads/gsm8k") is None


# ---- YAML examples --------------------------------------------------------------------------

def _validate_study(data: dict[str, Any]) -> None:
    from sftmix.study.config import StudyConfig

    StudyConfig.model_validate(data)


def _validate_schedule(data: dict[str, Any]) -> None:
    from sftmix.study import spellings
    from sftmix.study.schedule import ScheduleConfig, stages_of

    assert stages_of(ScheduleConfig.model_validate(spellings.schedule(data)))


def _validate_mixture(data: dict[str, Any]) -> None:
    from sftmix.data.spec import MixtureSpec

    MixtureSpec.model_validate(data)


def _validate_fragments(block: Block) -> None:
    """Alternatives shown one per line (``entries: [...]``, ``total: N``, ``training: {...}``)."""
    from sftmix.data.spec import EntrySpec
    from sftmix.train.config import TrainSettings

    data = yaml.safe_load("\n".join(block.lines))
    if set(data) == {"training"}:
        TrainSettings.model_validate(data["training"])
        return
    if set(data) == {"executor"}:
        from sftmix.study.executor_config import ExecutorConfig

        ExecutorConfig.model_validate(data["executor"])
        return
    for line in block.lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        part = yaml.safe_load(line)
        assert set(part) <= {"entries", "total"}, f"{block.where}: not a known fragment: {line}"
        for entry in part.get("entries", []):
            EntrySpec.model_validate(entry)


def validate_yaml(block: Block) -> None:
    data = yaml.safe_load("\n".join(block.lines))
    assert isinstance(data, dict), f"{block.where}: a YAML example should be a mapping"
    if "model" in data and ({"stages", "strategy"} & set(data)):
        _validate_schedule(data)
    elif "abilities" in data:
        _validate_study(data)
    elif "sources" in data and "entries" in data:
        _validate_mixture(data)
    else:
        _validate_fragments(block)


@pytest.mark.parametrize("block", yaml_blocks(), ids=lambda b: b.where)
def test_yaml_examples_are_valid(block: Block) -> None:
    validate_yaml(block)


# ---- commands -------------------------------------------------------------------------------

def test_every_command_is_run_or_excluded_with_a_reason() -> None:
    unknown = [f"{b.where}: {cmd}" for b in shell_blocks() for cmd, _ in commands(b)
               if not excluded(cmd) and not cmd.startswith(("sftmix ", "cat "))]
    assert not unknown, ("commands the docs test can neither run nor finds in EXCLUDED (add one "
                         "with its reason in tests/test_docs.py):\n" + "\n".join(unknown))


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Iterator[Env]:
    from sftmix.cli import main

    base = tmp_path_factory.mktemp("docs")
    (base / "shared").mkdir()
    (base / "shared" / "data").symlink_to(shared_data)
    cwd = base / "work"
    cwd.mkdir()
    (cwd / "configs").symlink_to(ROOT / "configs")
    for doc_path, real in PLACEHOLDERS.items():
        (cwd / doc_path).parent.mkdir(parents=True, exist_ok=True)
        (cwd / doc_path).symlink_to(cwd / real)
    # Files the docs show with `$ cat FILE` exist before any page uses them.
    for block in shell_blocks():
        for command, after in commands(block):
            if command.startswith("cat "):
                (cwd / command.split()[1]).write_text("\n".join(after) + "\n", encoding="utf-8")

    def run(argv: list[str]) -> tuple[int, str]:
        import contextlib
        import io

        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(argv)
        return code, out.getvalue()

    # The paper configs read the shared data (a reader's own copy is in data/paper); the quick
    # start's config reads the lab corpus the docs write into this folder (configs/ is a link
    # to the checkout's, so its default, data/lab beside it, would be the checkout's).
    # `data get --from` reads a local copy: nothing may reach for the hub, nor fill ~/.cache.
    data_env = {**paper_data_env(shared_data), "SFTMIX_LAB_DIR": str(cwd / "data" / "lab"),
                "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(base / "hf")}
    saved = {k: os.environ.get(k) for k in ("SFTMIX_JUDGE_BASE_URL", "SFTMIX_JUDGE_API_KEY",
                                            "SFTMIX_JUDGE_CACHE", "SFTMIX_PROGRESS", "OMP_NUM_THREADS",
                                            *data_env)}
    before = Path.cwd()
    with FakeOpenAI(lambda req: "Rating: [[5]]") as judge:
        os.environ.update({"SFTMIX_JUDGE_BASE_URL": judge.url, "SFTMIX_JUDGE_API_KEY": "docs",
                           "SFTMIX_JUDGE_CACHE": str(base / "judge.sqlite"),
                           "SFTMIX_PROGRESS": "0", "OMP_NUM_THREADS": "1", **data_env})
        os.chdir(cwd)
        try:
            yield Env(cwd, run)
        finally:
            os.chdir(before)
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


@pytest.mark.slow
@pytest.mark.parametrize("path", doc_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_documented_commands_run_as_written(path: Path, env: Env) -> None:
    for block in (b for b in shell_blocks() if b.file == path):
        for command, after in commands(block):
            if excluded(command):
                continue
            if command.startswith("cat "):
                continue  # written by the env fixture
            argv = shlex.split(command)[1:]
            small = SMALL.get(argv[0]) if argv else None
            code, printed = env.run(small(argv, env) if small else argv)
            assert code == 0, f"{block.where}: `{command}` exited {code}\n{printed[-3000:]}"
            # The folders the docs show are the ones the command names (keys and hashes aside),
            # whatever its size.
            for line in after:
                if "evals/" in line:
                    shape = folder_shape(line)
                    assert any(shape.fullmatch(p.strip()) for p in printed.splitlines()), (
                        f"{block.where}: `{command}` names no folder like {line.strip()!r}\n"
                        f"--- it printed:\n{printed[-3000:]}")
            if not small:
                # A command run as written prints what the docs show (bar elided lines).
                shown = [line.strip() for line in after if line.strip() and line.strip() != "..."]
                missing = [line for line in shown if line not in
                           {p.strip() for p in printed.splitlines()}]
                assert not missing, (f"{block.where}: `{command}` no longer prints:\n"
                                     + "\n".join(missing) + f"\n--- it printed:\n{printed[-3000:]}")


def folder_shape(line: str) -> re.Pattern[str]:
    """A documented line as a pattern: a run of 8 or more hex digits (a key, a hash) stands for
    any run of the same length, the rest is literal."""
    parts = re.split(r"([0-9a-f]{8,})", line.strip())
    return re.compile("".join(f"[0-9a-f]{{{len(p)}}}" if i % 2 else re.escape(p) for i, p in enumerate(parts)))


def test_folder_shapes() -> None:
    shape = folder_shape("results in evals/s-5e0c4b1f9a7d2c83-3f9a1c2e")
    assert shape.fullmatch("results in evals/s-0123456789abcdef-01234567")
    assert not shape.fullmatch("results in evals/02-general-01234567")


@pytest.mark.slow
def test_a_study_s_folders_are_named_as_documented(env: Env) -> None:
    """docs/studies.md's layout of a study directory (``evals/e-<key>/`` ...) against the one the
    README's ``sftmix run`` makes."""
    block = next(b for b in blocks(ROOT / "docs" / "studies.md") if any("layout.json" in x for x in b.lines))
    documented = dict(re.findall(r"^(\w+)/([a-z]+-)<key>/", "\n".join(block.lines), re.MULTILINE))
    assert set(documented) == {"models", "mixtures", "stages", "evals"}, block.where
    study = env.cwd / "studies" / "paper"
    if not (study / "evals").is_dir():
        code, out = env.run(_small_run(["run", "configs/paper/all.yaml", "-o", "studies/paper"], env))
        assert code == 0, out
    for folder, prefix in documented.items():
        names = [p.name for p in (study / folder).iterdir() if (p / "COMPLETE.json").is_file()] \
            if (study / folder).is_dir() else []
        assert folder == "models" or names, f"{study / folder}: no artefact"
        for name in names:
            assert re.fullmatch(re.escape(prefix) + "[0-9a-f]{16}", name), f"{block.where}: {folder}/{name}"
