"""`sftmix data inspect` and `sftmix data mix` as a user runs them: real subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"


def sftmix(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sftmix", "data", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def test_inspect_real_file_guesses_the_format(shared_data: Path) -> None:
    proc = sftmix("inspect", str(shared_data / "general/sharegpt_dpo_chosen.json"))
    assert proc.returncode == 0, proc.stderr
    assert "format sharegpt, ability general (the sharegpt format's default; --ability" in proc.stdout
    assert "records read 300, valid 300, skipped 0, exact duplicates 5" in proc.stdout
    assert "turns: min 2" in proc.stdout
    assert "--- sharegpt_dpo_chosen:0" in proc.stdout


def test_inspect_reports_skipped_records_as_json(shared_data: Path) -> None:
    proc = sftmix("inspect", str(shared_data / "code/code_alpaca_2k.json"), "--ability", "code", "--json")
    report = json.loads(proc.stdout)
    assert report["skipped"]["count"] == 2
    assert report["ability"] == "code"
    assert "record 237, field 'output'" in report["skipped"]["first_reasons"][0]


def test_malformed_input_exits_2_without_traceback() -> None:
    proc = sftmix("inspect", str(FIXTURES / "unknown_role.json"), "--on-error", "raise")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "unknown_role.json, record 2, field 'conversations[1].from': unknown role 'bot'" in proc.stderr
    # The way out is spelled for where the user is: the flag here, the YAML field in a file.
    assert "(give --on-error skip to count and skip such records)" in proc.stderr
    assert "on_error: skip" not in proc.stderr
    proc = sftmix("inspect", str(FIXTURES / "bad_json.jsonl"), "--format", "nope")
    assert proc.returncode == 2 and "unknown data format 'nope'; available:" in proc.stderr


def test_mix_writes_mixture_and_manifest(shared_data: Path, tmp_path: Path) -> None:
    config = tmp_path / "mix.yaml"
    config.write_text(
        f"seed: 0\n"
        f"sources:\n"
        f"  - {{name: maths, path: {shared_data / 'gsm8k/train.jsonl'}, format: gsm8k}}\n"
        f"  - {{name: chat, path: {shared_data / 'general/sharegpt_dpo_chosen.json'}, format: sharegpt,"
        f" filters: [no_code_math]}}\n"
        f"entries:\n  - {{source: maths, fraction: 1/256}}\n  - {{source: chat, count: 30}}\n"
    )
    proc = sftmix("mix", str(config), "-o", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    assert "wrote 59 examples" in proc.stdout
    lines = (tmp_path / "out/data.jsonl").read_text().splitlines()
    assert len(lines) == 59
    manifest = json.loads((tmp_path / "out/manifest.json").read_text())
    assert manifest["total"]["by_ability"] == {"general": 30, "maths": 29}
    # What filters and de-duplication removed is printed, not only kept in the manifest.
    chat = manifest["sources"]["chat"]
    dropped = chat["filters"]["no_code_math"]["dropped"]
    assert dropped > 0
    assert (f"  source chat: 300 read, {dropped} dropped by filter no_code_math, "
            f"{chat['duplicates']['count']} exact duplicates (kept), "
            f"{chat['available']} available") in proc.stdout.splitlines()
    assert manifest["sources"]["chat"]["filters"]["no_code_math"]["dropped"] == 57
    assert (tmp_path / "out/COMPLETE.json").is_file()


def test_mix_with_bad_config_or_data_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "mix.yaml"
    config.write_text(f"sources:\n  - {{name: s, path: {FIXTURES / 'missing_field.jsonl'}, format: gsm8k}}\n"
                      "entries:\n  - {source: s, fraction: -1}\n")
    proc = sftmix("mix", str(config), "-o", str(tmp_path / "out"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "line 4, field 'entries[0].fraction'" in proc.stderr
    config.write_text(config.read_text().replace("-1", "1"))
    proc = sftmix("mix", str(config), "-o", str(tmp_path / "out"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "missing_field.jsonl, line 3, field 'answer': required field is missing" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_relative_paths_resolve_against_the_yaml_folder(shared_data: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    (project / "data/chat.jsonl").write_text((shared_data / "general/messages_kto_positive.jsonl").read_text())
    (project / "mix.yaml").write_text("sources:\n  - {name: chat, path: data/chat.jsonl, format: messages}\n"
                                      "entries:\n  - {source: chat, fraction: 2}\n")
    proc = sftmix("mix", str(project / "mix.yaml"), "-o", "out", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "chat: 300 of 150 (fraction 2.0, upsampled x2.0)" in proc.stdout
    manifest = json.loads((tmp_path / "out/manifest.json").read_text())
    assert manifest["sources"]["chat"]["path"] == "data/chat.jsonl"


def test_mix_summary_names_decontamination_hits() -> None:
    from sftmix.data.cli import source_lines

    source = {"records_read": 100, "skipped": {"count": 2, "first_reasons": []}, "filters": {},
              "duplicates": {"count": 0, "dropped": 0, "examples": []},
              "decontamination": {"n": 13, "contaminated": 4, "dropped": 4, "examples": []},
              "available": 94}
    assert source_lines({"maths": source}) == [
        "  source maths: 100 read, 2 malformed skipped, 4 overlapping an evaluation set "
        "(13-grams, 4 dropped), 94 available"]
