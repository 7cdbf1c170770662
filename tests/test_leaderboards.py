"""The committed leaderboards are what `omarbench report` makes of the committed run records: every table
byte for byte, every figure present (figures are byte-identical too with the same matplotlib release)."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from omarbench.cli import app

LEADERBOARDS = Path(__file__).resolve().parent.parent / "leaderboards"
FIGURES = (".png", ".pdf")

# output folder -> (its records folder, the report options it was made with besides --results/--out)
FOLDERS = {
    "quick": ("quick/records", ["--preset", "quick"]),
    "paper": ("paper/records", ["--preset", "paper", "--scaling"]),
    "paper/paper-refs": ("paper/records", ["--preset", "paper", "--references", "paper"]),
    "maze2d": ("maze2d/records", ["--preset", "laptop"]),
    "maze2d/d4rl-refs": ("maze2d/records", ["--preset", "laptop", "--references", "d4rl"]),
    "halfcheetah": ("halfcheetah/records", ["--preset", "laptop"]),
    "halfcheetah/paper-refs": ("halfcheetah/records", ["--preset", "laptop", "--references", "paper"]),
    "paper/precision/fp32": ("paper/precision/fp32/records", ["--preset", "paper"]),
    "paper/precision/bf16": ("paper/precision/bf16/records", ["--preset", "paper"]),
}


def _committed(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and p.name != "README.md"}


@pytest.mark.parametrize("name", sorted(FOLDERS))
def test_report_on_committed_records_regenerates_committed_files(name, tmp_path):
    folder = LEADERBOARDS / name
    records = LEADERBOARDS / FOLDERS[name][0]
    if not records.is_dir() or not folder.is_dir():
        pytest.skip(f"leaderboards/{name} is not committed")
    expected = _committed(folder)
    assert "leaderboard.md" in expected and "scores.csv" in expected
    result = CliRunner().invoke(
        app, ["report", "--results", str(records), "--out", str(tmp_path), *FOLDERS[name][1]]
    )
    assert result.exit_code == 0, result.output
    produced = _committed(tmp_path)
    assert sorted(produced) == sorted(expected)
    for file in sorted(expected):
        if file.endswith(FIGURES):  # rendering may change with the matplotlib release; tables may not
            assert produced[file][:4] == expected[file][:4] and len(produced[file]) > 1000
            continue
        assert produced[file] == expected[file], f"leaderboards/{name}/{file} differs from its regeneration"


CARDS = Path(__file__).resolve().parent.parent / "dataset_cards"
# records folders whose datasets have committed cards (the quick datasets are remade by the main line) ->
# the cards' folder (the precision study's datasets were collected on another CPU vendor: other digests)
CARDED = {"maze2d/records": CARDS, "halfcheetah/records": CARDS / "laptop", "paper/records": CARDS,
          "paper/diagnostics/td3bc-lambda/records": CARDS,
          "paper/cpu-check/avx2/records": CARDS, "paper/cpu-check/avx512/records": CARDS,
          "paper/precision/fp32/records": LEADERBOARDS / "paper/precision/cards",
          "paper/precision/bf16/records": LEADERBOARDS / "paper/precision/cards"}


def _card_digests(cards: Path = CARDS) -> dict[str, str]:
    """dataset id -> the digest its committed card names."""
    out = {}
    for card in sorted(cards.glob("*.md")):
        for line in card.read_text().splitlines():
            if line.startswith("| digest |"):
                out[card.stem] = line.split("`")[1]
    return out


@pytest.mark.parametrize("records", sorted(CARDED))
def test_every_record_names_a_dataset_digest_of_a_committed_card(records):
    folder = LEADERBOARDS / records
    if not folder.is_dir():
        pytest.skip(f"leaderboards/{records} is not committed")
    cards = _card_digests(CARDED[records])
    files = sorted(folder.glob("*.json"))
    assert files, f"no records in leaderboards/{records}"
    for f in files:
        ds = json.loads(f.read_text())["dataset"]
        assert ds["id"] in cards, f"{f.name}: no committed card for dataset {ds['id']}"
        assert ds["digest"] == cards[ds["id"]], f"{f.name}: digest differs from its card's"


def test_the_cpu_check_with_avx2_kernels_equals_the_study_records():
    """leaderboards/paper/cpu-check/: on an AVX-512 CPU with ATEN_CPU_CAPABILITY=avx2 the job reproduced the
    study's records (made without AVX-512) in every result field; with AVX-512 kernels it did not."""
    check = LEADERBOARDS / "paper/cpu-check"
    study = LEADERBOARDS / "paper/records"
    if not check.is_dir() or not study.is_dir():
        pytest.skip("the CPU check or the study's records are not committed")
    result_fields = ("final", "best", "curve", "weights_sha256", "key", "code_version", "dataset", "config")
    for kernels, same in (("avx2", True), ("avx512", False)):
        files = sorted((check / kernels / "records").glob("*.json"))
        assert len(files) == 5
        for f in files:
            mine, theirs = json.loads(f.read_text()), json.loads((study / f.name).read_text())
            assert mine["key"] == theirs["key"] and mine["dataset"] == theirs["dataset"]
            equal = all(mine[k] == theirs[k] for k in result_fields)
            assert equal is same, f"{kernels}/{f.name}"
