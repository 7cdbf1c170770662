"""The committed leaderboards are what `omarbench report` makes of the committed run records: every table
byte for byte, every figure present (figures are byte-identical too with the same matplotlib release)."""

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
