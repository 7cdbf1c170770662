"""One spelling rule for levels in every command (any case, ``_`` for ``-``), and one data-root rule
(``--root`` then ``<root>/<preset>``) for every ``datasets`` subcommand."""

from pathlib import Path

import pytest

from omarbench.collect.collector import resolve_levels
from omarbench.data.schema import parse_dataset_id
from omarbench.errors import UsageError
from omarbench.vocab import check_level, parse_levels


def test_levels_read_alike_everywhere():
    assert check_level("Medium_Replay") == "medium-replay" and check_level(" EXPERT ") == "expert"
    assert parse_levels("Expert,medium_replay") == ("medium-replay", "expert")
    assert resolve_levels("random,EXPERT") == ["random", "expert"]  # collect --level takes a comma list too
    assert resolve_levels("All") == ["random", "medium-replay", "medium", "expert"]
    task, level = parse_dataset_id("Spread-N2-Medium_Replay")
    assert (task.id, level) == ("spread-n2", "medium-replay")


@pytest.mark.parametrize("bad", ["bogus", "medium-", "medium--replay", ","])
def test_a_bad_level_is_still_named_with_the_choices(bad):
    with pytest.raises(UsageError, match="valid choices: random, medium-replay, medium, expert"):
        resolve_levels(bad)
    with pytest.raises(UsageError, match="valid choices"):
        check_level(bad)


def test_presets_read_any_spelling_of_a_level():
    from omarbench.offline.presets import preset_values

    assert preset_values("OMAR", "spread", "Medium_Replay") == preset_values("OMAR", "spread", "medium-replay")


def test_minari_export_looks_under_the_preset_root(tmp_path, monkeypatch):
    import omarbench.interop.minari as minari
    from omarbench.cli import app, run_cli

    seen = {}

    def fake_export(dataset, out, root, force=False):
        seen["root"] = Path(root)
        return Path(out) / "x"

    monkeypatch.setattr(minari, "export_minari", fake_export)
    rc = run_cli(app, ["datasets", "export", "spread-n1-random", "--format", "minari",
                       "--out", str(tmp_path / "o"), "--root", str(tmp_path), "--preset", "quick"])
    assert rc == 0 and seen["root"] == tmp_path / "quick"
