"""`omarbench datasets import og-marl`: a vault written by the real flashbax library, laid out as OG-MARL's
vaults of the OMAR authors' data are (batch of seeds, agents padded to one observation size), read with
tensorstore alone into our Zarr format."""

import numpy as np
import pytest
from peers import peer
from test_interop_episodes_minari import rollout_episodes
from typer.testing import CliRunner

from omarbench.cli import app
from omarbench.data import load_dataset
from omarbench.errors import OmarbenchError
from omarbench.tasks.spec import parse_task_id

TAG = parse_task_id("tag")
B, EPISODES, TAIL, D = 2, 3, 10, 16  # seeds, whole episodes per seed, rows of an unfinished episode, padded obs


def _seed_rows(seed):
    """One batch row: EPISODES real tag episodes then TAIL rows of a fourth, in OG-MARL's per-step layout."""
    obs, acts, rew, _, _, _ = rollout_episodes(TAG, EPISODES + 1, seed=seed)
    t = TAG.episode_length
    padded = np.full((EPISODES + 1, t, TAG.n_agents, D), -np.inf, np.float32)
    for i, a in enumerate(TAG.agents):
        padded[:, :, i, : a.obs_dim] = obs[i]
    rows = EPISODES * t + TAIL
    flat = padded.reshape(-1, TAG.n_agents, D)[:rows]
    terminals = np.zeros(((EPISODES + 1) * t, TAG.n_agents), np.float32)
    terminals[t - 1 :: t] = 1.0  # the OMAR vaults flag the 25th step of every episode as terminal
    return {
        "observations": flat,
        "actions": np.stack(acts, axis=2).reshape(-1, TAG.n_agents, 2)[:rows].astype(np.float32),
        "rewards": rew.reshape(-1, TAG.n_agents)[:rows].astype(np.float32),
        "terminals": terminals[:rows],
        "truncations": np.zeros((rows, TAG.n_agents), np.float32),
        "infos": {"state": flat.reshape(rows, -1)},
    }


@pytest.fixture(scope="module")
def vault(tmp_path_factory):
    """Written as OG-MARL does: a flashbax trajectory buffer of the experience dict, dumped by Vault.write."""
    jnp = peer("jax.numpy", "flashbax")
    fbx = peer("flashbax", "flashbax")
    from flashbax.vault import Vault

    rows = [_seed_rows(s) for s in range(B)]
    n = len(rows[0]["rewards"])
    first = {k: (v[0] if k != "infos" else {"state": v["state"][0]}) for k, v in rows[0].items()}
    buf = fbx.make_trajectory_buffer(add_batch_size=B, sample_batch_size=1, sample_sequence_length=1, period=1,
                                     min_length_time_axis=1, max_length_time_axis=n + 1)
    state = buf.init({k: jnp.asarray(v) if k != "infos" else {"state": jnp.asarray(v["state"])}
                      for k, v in first.items()})
    batch = {k: jnp.asarray(np.stack([r[k] for r in rows])) for k in rows[0] if k != "infos"}
    batch["infos"] = {"state": jnp.asarray(np.stack([r["infos"]["state"] for r in rows]))}
    state = buf.add(state, batch)
    base = tmp_path_factory.mktemp("vaults")
    v = Vault(vault_name="omar/mpe/simple_tag.vlt", vault_uid="Expert", rel_dir=str(base),
              experience_structure=state.experience)
    assert v.write(state) == n
    return base / "omar" / "mpe" / "simple_tag.vlt", rows


def _import(*args):
    return CliRunner().invoke(app, ["datasets", "import", "og-marl", *map(str, args)])


@pytest.mark.slow  # writing the vault imports JAX and flashbax (tens of seconds)
def test_import_keeps_agents_episodes_and_provenance(vault, tmp_path):
    peer("tensorstore", "og-marl")
    vlt, rows = vault
    res = _import(vlt, "--uid", "Expert", "--batch", "1", "--root", tmp_path)
    assert res.exit_code == 0, res.output
    ds = load_dataset("tag-expert", tmp_path)  # digest-checked
    src = rows[1]
    t, n = TAG.episode_length, EPISODES * TAG.episode_length
    assert ds.n_transitions == n and ds.n_episodes == EPISODES  # the unfinished episode is dropped
    np.testing.assert_array_equal(ds.episode_starts.numpy(), np.arange(EPISODES + 1) * t)
    for i, a in enumerate(TAG.agents):
        obs = ds.agents[i].observations.numpy()
        assert obs.shape == (n, a.obs_dim)  # the prey's 14 columns, padding cut
        np.testing.assert_array_equal(obs, src["observations"][:n, i, : a.obs_dim])
        np.testing.assert_array_equal(ds.agents[i].actions.numpy(), src["actions"][:n, i])
        np.testing.assert_array_equal(ds.agents[i].rewards.numpy(), src["rewards"][:n, i])
        nxt = ds.agents[i].next_observations.numpy().reshape(EPISODES, t, -1)
        np.testing.assert_array_equal(nxt[:, :-1], obs.reshape(EPISODES, t, -1)[:, 1:])
        np.testing.assert_array_equal(nxt[:, -1], obs.reshape(EPISODES, t, -1)[:, -1])
    assert ds.terminals.numpy().reshape(EPISODES, t)[:, -1].all() and ds.terminals.sum() == EPISODES
    assert not ds.truncations.any()
    prov = ds.metadata["provenance"]
    assert prov["batch"] == 1 and prov["batches"] == B and prov["uid"] == "Expert"
    assert prov["rows_dropped_unfinished_episode"] == TAIL
    assert prov["observation_padding"] == {"prey_0": {"columns": 2, "value": "-inf"}}
    # the structure holds the buffer's capacity; the vault index, what was written
    assert prov["vault_metadata"]["structure_shape"]["observations"] == f"({B}, {n + TAIL + 1}, 4, 16)"
    assert prov["vault_index"] == n + TAIL
    assert ds.reference_returns["expert"]["mean"] == pytest.approx(185.6)  # the paper's, PROTOCOL §3
    assert ds.reference_returns["random"]["source"] == "paper"


@pytest.mark.slow  # writing the vault imports JAX and flashbax (tens of seconds)
def test_tensorstore_reads_what_flashbax_reads(vault):
    peer("flashbax", "flashbax")
    from flashbax.vault import Vault

    from omarbench.interop.og_marl import open_vault, read_leaf

    vlt, _ = vault
    theirs = Vault(vault_name=vlt.name, vault_uid="Expert", rel_dir=str(vlt.parent)).read().experience
    info = open_vault(vlt / "Expert")
    for leaf in ("observations", "actions", "rewards", "terminals", "truncations"):
        for b in range(B):
            np.testing.assert_array_equal(read_leaf(info, leaf, b), np.asarray(theirs[leaf][b]))


@pytest.mark.slow  # writing the vault imports JAX and flashbax (tens of seconds)
def test_imported_data_trains(vault, tmp_path):
    from omarbench.offline.train import train

    vlt, _ = vault
    assert _import(vlt / "Expert", "--root", tmp_path).exit_code == 0
    recs = train("BC", "tag", "expert", [0], preset="quick", root=str(tmp_path), results_dir=str(tmp_path / "r"),
                 overrides={"rounds": 2, "eval_every": 2, "eval_episodes": 1, "final_episodes": 1}, progress=False)
    assert recs[0]["status"] == "ok" and recs[0]["dataset"]["n_transitions"] == EPISODES * TAG.episode_length


@pytest.mark.slow
@pytest.mark.parametrize("args, fragment", [
    (["--batch", "2"], "batch 2 is out of range: the vault holds 2 (0..1)"),
    (["--task", "spread"], "the vault holds 4 agents, task spread has 3"),
    (["--uid", "Poor"], "unknown vault uid 'Poor'; valid choices: Expert"),
    (["--level", "best"], "unknown level 'best'"),
])
def test_bad_input_is_one_line_and_writes_nothing(vault, tmp_path, args, fragment):
    peer("tensorstore", "og-marl")
    vlt, _ = vault
    res = _import(vlt, "--root", tmp_path / "out", *args)
    assert res.exit_code != 0 and isinstance(res.exception, OmarbenchError)
    assert fragment in str(res.exception) and "\n" not in str(res.exception)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_not_a_vault_and_unknown_format(tmp_path):
    res = _import(tmp_path)
    assert "holds no flashbax vault" in str(res.exception)
    res = CliRunner().invoke(app, ["datasets", "import", "d4rl", str(tmp_path)])
    assert "unknown import format 'd4rl'; valid choices: og-marl" in str(res.exception)


def test_missing_tensorstore_names_the_extra(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tensorstore", None)  # import fails as if not installed
    (tmp_path / "metadata.json").write_text("{}")
    res = _import(tmp_path)
    assert 'pip install -e ".[og-marl]"' in str(res.exception) and "\n" not in str(res.exception)
