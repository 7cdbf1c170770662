"""Shipped behaviour runs: installing one gives the datasets a full run gives, bit for bit, or a clear error."""

import json

import pytest

from omarbench.collect import shipped
from omarbench.collect.api import collect
from omarbench.collect.collector import behaviour_dir, preset_seed, tiny_config
from omarbench.data import LEVELS, dataset_id, dataset_path, load_dataset
from omarbench.errors import OmarbenchError
from omarbench.tasks.spec import parse_task_id

CFG = tiny_config(total_steps=3_000, transitions=1_000)
TASK = parse_task_id("spread")


def quiet(root, level="all", **kw):
    return collect("spread", level, root=root, config=CFG, progress=False, log=lambda s: None, **kw)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """A tiny behaviour run trained here, its datasets' digests and the run shipped into a package folder."""
    root = tmp_path_factory.mktemp("full")
    digests = {load_dataset(str(p)).level: load_dataset(str(p)).digest for p in quiet(root)}
    assets = tmp_path_factory.mktemp("assets")
    out = shipped.ship(behaviour_dir(root, TASK, 0, "paper"), assets)
    return root, digests, assets, out


def test_ship_keeps_only_the_level_checkpoints(full_run):
    _, _, _, out = full_run
    info = json.loads((out / "run.json").read_text())
    kept = sorted(int(f.stem) for f in (out / "checkpoints").glob("*.pt"))
    assert kept == shipped.level_segments(info) and len(kept) < len(info["checkpoints"])
    assert not (out / "experience").exists() and not (out / "state.pt").exists()


def test_installed_run_gives_the_same_datasets(full_run, tmp_path, monkeypatch):
    _, digests, assets, _ = full_run
    monkeypatch.setattr(shipped, "SHIPPED_DIR", assets)
    lines = []
    paths = collect("spread", "all", root=tmp_path, config=CFG, progress=False, log=lines.append)
    assert {load_dataset(str(p)).level: load_dataset(str(p)).digest for p in paths} == digests
    assert sorted(digests) == sorted(LEVELS)
    run = behaviour_dir(tmp_path, TASK, 0, "paper")
    info = json.loads((run / "run.json").read_text())
    assert info["shipped"] == run.name and not (run / "state.pt").exists()
    assert any("using the shipped behaviour run" in s for s in lines)
    # the medium-replay prefix was retrained beside it and stopped at the medium checkpoint
    replay = json.loads((run.with_name(run.name + shipped.REPLAY_SUFFIX) / "run.json").read_text())
    assert replay["checkpoints"][-1]["segment"] == info["levels"]["medium-replay"]


def test_replay_that_does_not_reproduce_stops_and_leaves_nothing(full_run, tmp_path, monkeypatch):
    _, _, assets, out = full_run
    bad = tmp_path / "assets"
    (bad / out.name).mkdir(parents=True)
    info = json.loads((out / "run.json").read_text())
    for c in info["checkpoints"]:
        if c["segment"] == 1:
            c["digest"] = "0" * 64  # as if another CPU had made the run
    (bad / out.name / "run.json").write_text(json.dumps(info))
    (bad / out.name / "checkpoints").symlink_to(out / "checkpoints")
    monkeypatch.setattr(shipped, "SHIPPED_DIR", bad)
    root = tmp_path / "root"
    with pytest.raises(OmarbenchError, match="did not reproduce its checkpoint 1 .*--retrain"):
        quiet(root, "medium-replay")
    assert not dataset_path(dataset_id(TASK, "medium-replay"), root).exists()


def test_damaged_shipped_checkpoint_is_refused(full_run, tmp_path, monkeypatch):
    import torch

    _, _, assets, out = full_run
    bad = tmp_path / "assets" / out.name
    (bad / "checkpoints").mkdir(parents=True)
    (bad / "run.json").write_bytes((out / "run.json").read_bytes())
    for f in (out / "checkpoints").glob("*.pt"):
        (bad / "checkpoints" / f.name).write_bytes(f.read_bytes())
    expert = json.loads((out / "run.json").read_text())["levels"]["expert"]
    state = torch.load(bad / "checkpoints" / f"{expert:04d}.pt", weights_only=True)
    first = next(iter(state["actors"][0]))
    state["actors"][0][first] += 1e-3  # a valid file whose weights are not the recorded ones
    torch.save(state, bad / "checkpoints" / f"{expert:04d}.pt")
    monkeypatch.setattr(shipped, "SHIPPED_DIR", tmp_path / "assets")
    with pytest.raises(OmarbenchError, match=f"shipped behaviour run {out.name} is damaged .checkpoint {expert}"):
        quiet(tmp_path / "root", "expert")


def test_retrain_ignores_the_shipped_run(full_run, tmp_path, monkeypatch):
    _, digests, assets, _ = full_run
    monkeypatch.setattr(shipped, "SHIPPED_DIR", assets)
    paths = quiet(tmp_path, "medium-replay", retrain=True)
    info = json.loads((behaviour_dir(tmp_path, TASK, 0, "paper") / "run.json").read_text())
    assert "shipped" not in info and info["status"] == "finished"
    assert load_dataset(str(paths[0])).digest == digests["medium-replay"]
    # an installed run is not silently retrained over
    other = tmp_path / "other"
    quiet(other, "expert")
    with pytest.raises(OmarbenchError, match="installed from the shipped run .*delete that directory"):
        quiet(other, "expert", retrain=True)


def test_a_different_config_trains_instead(full_run, tmp_path, monkeypatch):
    _, _, assets, _ = full_run
    monkeypatch.setattr(shipped, "SHIPPED_DIR", assets)
    cfg = tiny_config(total_steps=2_000, transitions=500)
    collect("spread", "expert", root=tmp_path, config=cfg, progress=False, log=lambda s: None)
    info = json.loads((behaviour_dir(tmp_path, TASK, 0, "paper") / "run.json").read_text())
    assert "shipped" not in info and info["steps"] == 2_000


SHIPPED = sorted(p.name for p in shipped.SHIPPED_DIR.iterdir() if (p / "run.json").exists()) \
    if shipped.SHIPPED_DIR.is_dir() else []
CARDS = shipped.SHIPPED_DIR.parents[2] / "dataset_cards"


def test_the_paper_runs_are_shipped():
    assert {"spread-paper-seed0", "tag-paper-seed0", "world-paper-seed0"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_run_matches_its_record_and_the_cards(name):
    src = shipped.SHIPPED_DIR / name
    info = json.loads((src / "run.json").read_text())
    assert info["status"] == "finished" and info["config"]["total_steps"] == info["steps"]
    recorded = {c["segment"]: c["digest"] for c in info["checkpoints"]}
    for seg in shipped.level_segments(info):
        assert shipped.checkpoint_digest(src / "checkpoints" / f"{seg:04d}.pt") == recorded[seg]
    best = max(info["checkpoints"], key=lambda c: c["eval_return"])["segment"]
    assert info["levels"]["expert"] == best
    task = parse_task_id(name.rsplit(f"-{info['preset']}-seed", 1)[0].replace("+", ":"))
    if not CARDS.is_dir():
        pytest.skip("dataset cards are not beside this install")
    checked = 0
    for level, seg in info["levels"].items():
        card = (CARDS / f"{dataset_id(task, level)}.md")
        if not card.exists():
            continue
        text = card.read_text()
        if f'- seeds: `{{"behaviour": {info["seed"]},' not in text:
            continue  # the committed card is another seed's run (another seed may be shipped as evidence)
        checked += 1
        if level != "random":  # the card's provenance names the shipped checkpoint
            assert f'"digest": "{recorded[seg]}"' in text, f"{card.name} names another checkpoint"
        mean = info["references"]["expert"]["mean"]
        assert f"{mean:.2f} ±" in text, f"{card.name}: expert reference differs from the shipped run's"
    if info["seed"] == preset_seed(task, info["preset"]):  # the datasets' run: each has its committed cards
        assert checked, f"no committed card of {name}'s datasets"


def test_study_projection_counts_only_the_medium_prefix_of_a_shipped_run():
    from omarbench.collect.collector import preset_config
    from omarbench.perf.study import shipped_steps

    for name in SHIPPED:
        info = json.loads((shipped.SHIPPED_DIR / name / "run.json").read_text())
        tid = name.rsplit("-paper-seed", 1)[0].replace("+", ":")
        if info["seed"] != preset_seed(parse_task_id(tid), "paper"):
            continue  # not a run the study's datasets come from
        medium = next(c for c in info["checkpoints"] if c["segment"] == info["levels"]["medium-replay"])
        assert shipped_steps(tid) == medium["steps"] < preset_config(parse_task_id(tid), "paper").run.total_steps
    assert shipped_steps("spread-n9") is None  # nothing shipped: the whole budget is counted
