"""The results store: atomic per-run files, concurrent writers lose nothing, unreadable files are skipped."""

import json
import multiprocessing as mp
import warnings
from pathlib import Path

import pytest

from omarbench import results as rs
from omarbench.machine import cpu_capability, cpu_label


def make_record(algo="OMAR", task="spread", level="medium", seed=0, score=50.0, *, status="ok", preset="paper",
                digest="d" * 64, version="0.1.0+test", config=None, curve=None, created="2026-01-01T00:00:00Z",
                reason=None, ret=None, episodes=100, refs=(0.0, 100.0)):
    """A complete run record as the trainer writes it (score = normalised score of the final policy)."""
    config = dict(config or {"rounds": 10})
    ret = score if ret is None else ret
    rec = {
        "schema": 1,
        "key": rs.run_key(algo, task, level, seed, preset, config, digest, version),
        "algo": algo, "task": task, "level": level, "seed": seed, "preset": preset, "config": config,
        "dataset": {"id": f"{task}-{level}", "digest": digest, "n_transitions": 1000},
        "reference_returns": {"random": refs[0], "expert": refs[1], "source": "dataset"},
        "code_version": version, "device": "cpu", "status": status, "reason": reason,
        "curve": list(curve or []),
        "final": None if status != "ok" else {"return": ret, "return_std": 1.0, "episodes": episodes,
                                              "normalised": score},
        "wall_time_s": 1.5, "created": created,
    }
    return rec


def test_write_is_atomic_and_named_by_contract(tmp_path):
    rec = make_record(task="tag:mpe2", seed=3)
    path = rs.write_record(tmp_path, rec)
    assert path.name == f"OMAR__tag+mpe2__medium__seed3__{rec['key'][:12]}.json"
    assert json.loads(path.read_text()) == {**rec, "cpu": cpu_label(), "cpu_capability": cpu_capability()}
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left behind


def test_a_record_names_the_cpu_it_ran_on(tmp_path):
    """The CPU decides a run's float rounding: records carry its label, and keep one they were given."""
    label = cpu_label()
    if Path("/proc/cpuinfo").is_file():
        assert "family" in label and "model" in label
    path = rs.write_record(tmp_path, make_record(seed=1))
    assert json.loads(path.read_text())["cpu"] == label
    capabilities = ("DEFAULT", "AVX2", "AVX512", "ZVECTOR", "VSX", "SVE256")
    assert json.loads(path.read_text())["cpu_capability"] in capabilities
    given = rs.write_record(tmp_path, {**make_record(seed=2), "cpu": "Some CPU (family 1, model 2)"})
    assert json.loads(given.read_text())["cpu"] == "Some CPU (family 1, model 2)"
    assert len(rs.load_records(tmp_path)) == 2  # an extra field does not disturb the tables


def test_load_records_is_tidy_one_row_per_run(tmp_path):
    for seed in range(3):
        rs.write_record(tmp_path, make_record(seed=seed, score=10.0 * seed,
                                              curve=[{"round": 10, "return": 1.0, "normalised": 2.0},
                                                     {"round": 20, "return": 3.0, "normalised": 4.0}]))
    rs.write_record(tmp_path, make_record(algo="MA-CQL", status="failed", reason="NaN in critic loss"))
    df = rs.load_records(tmp_path)
    assert len(df) == 4
    for col in ("algo", "task", "level", "seed", "preset", "status", "reason", "final_return", "normalised",
                "dataset_digest", "code_version", "key", "wall_time_s"):
        assert col in df.columns
    ok = df[df.status == "ok"].sort_values("seed")
    assert list(ok["normalised"]) == [0.0, 10.0, 20.0]
    assert df[df.status == "failed"]["reason"].item() == "NaN in critic loss"
    curves = rs.load_curves(tmp_path)
    assert len(curves) == 6 and set(curves["round"]) == {10, 20}
    assert list(curves.columns) == list(rs.CURVE_COLUMNS)


def test_unreadable_files_are_skipped_with_a_warning(tmp_path):
    rs.write_record(tmp_path, make_record())
    (tmp_path / "broken.json").write_text('{"algo": "OMAR", "task"')  # truncated by a crash
    (tmp_path / "other.json").write_text('{"hello": 1}')
    (tmp_path / ".x.json.tmp").write_text("partial")  # an in-flight temporary file: ignored silently
    with pytest.warns(rs.RecordWarning) as caught:
        df = rs.load_records(tmp_path)
    assert len(df) == 1
    messages = " ".join(str(w.message) for w in caught)
    assert "broken.json" in messages and "other.json" in messages
    assert len(df.attrs["skipped"]) == 2


def test_missing_directory_gives_empty_tables():
    df = rs.load_records("/nonexistent/omarbench-results")
    assert df.empty and "normalised" in df.columns
    assert rs.load_curves("/nonexistent/omarbench-results").empty


def test_keys_are_recomputed_from_a_record_s_fields():
    ok = make_record(seed=0)
    forged = make_record(seed=2)
    forged["key"] = "0" * 64  # a stored key that does not match the fields is not trusted
    assert rs.key_of(ok) == ok["key"]
    assert rs.key_of(forged) == make_record(seed=2)["key"] != forged["key"]


def test_run_key_depends_on_config_digest_and_version():
    base = dict(algo="OMAR", task="spread", level="medium", seed=0, preset="paper", config={"a": 1},
                dataset_digest="x", code_version="v")
    k = rs.run_key(**base)
    assert k == rs.run_key(**{**base, "config": {"a": 1}})
    for change in ({"config": {"a": 2}}, {"dataset_digest": "y"}, {"code_version": "w"}, {"seed": 1}):
        assert rs.run_key(**{**base, **change}) != k


def _package_copy(tmp_path):
    import shutil

    import omarbench

    pkg = tmp_path / "omarbench"
    shutil.copytree(Path(omarbench.__file__).parent, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    return pkg


def _edit(pkg, rel, old, new):
    text = (pkg / rel).read_text()
    assert old in text, f"{rel} lacks {old!r}"
    (pkg / rel).write_text(text.replace(old, new, 1))


def _algos():
    from omarbench.offline.algos import ALGO_NAMES

    return list(ALGO_NAMES)


def test_code_version_follows_result_sources_only(tmp_path):
    """Editing the learners changes the code version (finished runs are redone); editing the report or
    the sweep does not (a long study survives commits of its own records)."""
    pkg = _package_copy(tmp_path)
    base = rs.source_digest(pkg)
    for harmless in ("report/build.py", "grid/sweep.py", "cli/__init__.py"):
        (pkg / harmless).write_text((pkg / harmless).read_text() + "\nX_EDITED = 1\n")
    assert rs.source_digest(pkg) == base
    (pkg / "offline/algos/cql.py").write_text((pkg / "offline/algos/cql.py").read_text() + "\nX_EDITED = 1\n")
    assert rs.source_digest(pkg) != base
    assert rs.code_version().split("+src.")[1] == rs.source_digest()[:12]


def test_a_task_version_follows_its_own_prey_asset_only(tmp_path):
    """Shipping or retraining one task's prey reruns that task's runs and no other task's."""
    from omarbench.tasks.prey import prey_version_part
    from omarbench.tasks.spec import parse_task_id

    pkg = _package_copy(tmp_path)
    for f in (pkg / "assets" / "prey").glob("tag+mpe2.*"):  # start from tag:mpe2 with no prey shipped
        f.unlink()
    tasks = ("spread", "tag", "world", "tag:mpe2", "maze2d-umaze")

    def digests():
        return {t: rs.run_digest(pkg, "OMAR", t) for t in tasks}

    v0 = digests()
    assert v0["spread"] == v0["maze2d-umaze"] == rs.source_digest(pkg, "OMAR")  # no fixed agents
    assert len({v0["spread"], v0["tag"], v0["world"], v0["tag:mpe2"]}) == 4
    assert prey_version_part(parse_task_id("tag:mpe2"), pkg / "assets" / "prey") == "prey:placeholder-still"
    prey = pkg / "assets" / "prey"
    (prey / "tag+mpe2.pt").write_bytes((prey / "tag.pt").read_bytes())  # a prey shipped for tag:mpe2
    v1 = digests()
    assert [t for t in tasks if v1[t] != v0[t]] == ["tag:mpe2"]
    (prey / "tag.json").write_text("{}")  # provenance does not count
    assert digests() == v1
    (prey / "world.pt").write_bytes((prey / "world.pt").read_bytes() + b"\0")
    v2 = digests()
    assert [t for t in tasks if v2[t] != v1[t]] == ["world"]
    assert rs.code_version("OMAR", "tag").split("+src.")[1] == rs.run_digest(algo="OMAR", task="tag")[:12]


def test_comments_docstrings_and_formatting_do_not_change_a_version(tmp_path):
    pkg = _package_copy(tmp_path)
    before = {a: rs.source_digest(pkg, a) for a in [None, *_algos()]}
    core = "offline/algos/core.py"
    _edit(pkg, core, "\n\n@dataclass\nclass TD3Config", "\n# a note\n\n\n@dataclass\nclass  TD3Config")
    _edit(pkg, core, '"""Hyperparameters shared', '"""Reworded: hyperparameters shared')
    _edit(pkg, "offline/algos/icq.py", '"""MA-ICQ:', '"""An edited module docstring.\n\nMA-ICQ:')
    _edit(pkg, "offline/nn.py", "\nimport torch\n", "\nimport torch  # the tensor library\n")
    assert {a: rs.source_digest(pkg, a) for a in before} == before


def test_moves_and_renames_do_not_change_a_version(tmp_path):
    """A module moved to another folder or renamed (its importers updated) keeps every version."""
    from omarbench import versions

    pkg = _package_copy(tmp_path)
    before = {a: rs.source_digest(pkg, a) for a in [None, *_algos()]}
    # rename data/reader.py -> data/reading.py, move offline/nn.py -> nets.py, offline/algos/ -> zoo/
    (pkg / "data" / "reader.py").rename(pkg / "data" / "reading.py")
    (pkg / "offline" / "nn.py").rename(pkg / "nets.py")
    (pkg / "offline" / "algos").rename(pkg / "zoo")
    for f in pkg.rglob("*.py"):
        text = f.read_text()
        new = (text.replace("omarbench.data.reader", "omarbench.data.reading")
               .replace("omarbench.offline.nn", "omarbench.nets")
               .replace("omarbench.offline.algos", "omarbench.zoo"))
        if new != text:
            f.write_text(new)
    sources = (*versions.RESULT_SOURCES, "nets.py", "zoo")
    sources = tuple(s.replace("data/reader.py", "data/reading.py") for s in sources)
    after = {a: rs.source_digest(pkg, a, sources=sources, algo_package="zoo") for a in before}
    assert after == before


def test_an_algorithm_version_follows_its_own_files_and_the_shared_ones(tmp_path):
    """Fixing one algorithm reruns that algorithm (and those built on it), not the others."""
    pkg = _package_copy(tmp_path)
    algos = _algos()

    def versions():
        return {a: rs.source_digest(pkg, a) for a in algos}

    def edit(rel):
        (pkg / rel).write_text((pkg / rel).read_text() + "\nX_EDITED = 1\n")

    v0 = versions()
    assert len(set(v0.values())) == len(algos)
    edit("offline/algos/icq.py")
    v1 = versions()
    assert [a for a in algos if v1[a] != v0[a]] == ["MA-ICQ"]
    edit("offline/algos/cql.py")  # OMAR's critic penalty is CQL's
    v2 = versions()
    assert sorted(a for a in algos if v2[a] != v1[a]) == ["MA-CQL", "OMAR"]
    edit("offline/algos/core.py")
    v3 = versions()
    assert all(v3[a] != v2[a] for a in algos)
    edit("offline/train.py")
    v4 = versions()
    assert all(v4[a] != v3[a] for a in algos)
    for a in algos:
        assert rs.code_version(a).split("+src.")[1] == rs.source_digest(algo=a)[:12]
    with pytest.raises(ValueError, match="no algorithm module names"):
        rs.source_digest(pkg, "MA-XYZ")


def test_every_registered_algorithm_is_found_in_its_own_module():
    """The versions find each algorithm's module in the sources; it is the module its class comes from."""
    import sys

    import omarbench
    from omarbench import versions
    from omarbench.offline.algos import ALGORITHMS

    found = versions.algorithm_modules(Path(omarbench.__file__).parent)
    assert set(found) == set(ALGORITHMS)
    for name, cls in ALGORITHMS.items():
        assert Path(sys.modules[cls.__module__].__file__).resolve() in {p.resolve() for p in found[name]}
    assert {p.stem for p in found["OMAR"]} == {"omar", "cql"}  # OMAR imports MA-CQL's penalty


def test_record_file_is_compact_json_with_one_field_per_line(tmp_path):
    rec = make_record(seed=3, score=1.5)
    path = rs.write_record(tmp_path, rec)
    text = path.read_text()
    written = {**rec, "cpu": cpu_label(), "cpu_capability": cpu_capability()}
    assert json.loads(text) == json.loads(json.dumps(written))
    assert len(text.splitlines()) == len(written) + 2


def _writer(args):
    directory, start, count = args
    for i in range(start, start + count):
        rs.write_record(directory, make_record(seed=i, score=float(i)))
        # also rewrite one shared run again and again: replacing must never corrupt it
        rs.write_record(directory, make_record(algo="BC", seed=0, score=1.0))


def test_concurrent_writers_lose_no_record(tmp_path):
    ctx = mp.get_context("spawn")
    n = 40
    with warnings.catch_warnings():
        warnings.simplefilter("error", rs.RecordWarning)  # a reader never sees a partial file
        with ctx.Pool(2) as pool:
            pending = pool.map_async(_writer, [(str(tmp_path), 0, n), (str(tmp_path), n, n)])
            reads = 0
            while not pending.ready():
                rs.load_records(tmp_path)
                reads += 1
            pending.get()
        df = rs.load_records(tmp_path)
    assert reads > 0
    assert sorted(df[df.algo == "OMAR"]["seed"]) == list(range(2 * n))
    assert len(df[df.algo == "BC"]) == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_behaviour_records_are_kept_apart(tmp_path):
    rs.write_record(tmp_path, make_record())
    rs.write_behaviour_record(tmp_path, {"task": "spread-n2", "level": "medium-replay", "return_mean": 20.0,
                                         "normalised": 12.0, "source": "dataset mean episode return",
                                         "dataset": {"id": "spread-n2-medium-replay", "digest": "e" * 64},
                                         "reference_returns": {"random": {"mean": 1.0}, "expert": {"mean": 9.0}}})
    assert len(rs.load_records(tmp_path)) == 1
    beh = rs.load_behaviour(tmp_path)
    assert len(beh) == 1 and beh["normalised"].item() == 12.0 and beh["reference_expert"].item() == 9.0
