"""Behaviour training's results are locked to the bit: short MATD3 runs on small configs give the
checkpoint digests, experience files, run records and resumable states recorded here.

The golden values were made by the behaviour learner as it was before its loop was sped up; a change
that alters any bit of a behaviour run (and so the datasets built from it) fails here. The configs touch
every branch of the training loop: several segments, warm-up, fractional update ratios, delayed actor
updates, learning-rate decay, evaluation, a replay buffer that wraps (inside one batched add, too), a
fixed prey (tag) and a resume after an interrupted segment.
"""

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from omarbench.collect.matd3 import MATD3Config
from omarbench.collect.run import BehaviourRun, RunConfig, state_digest
from omarbench.tasks.prey import fixed_policy_for
from omarbench.tasks.spec import parse_task_id


def _mpe_config() -> RunConfig:
    return RunConfig(total_steps=1_200, num_envs=8, segment_episodes=2, updates_per_step=1.5, warmup_steps=200,
                     buffer_size=700, eval_episodes=10,
                     matd3=MATD3Config(actor_lr=1e-2, critic_lr=1e-2, batch_size=256, lr_final_fraction=0.1))


def _mujoco_config() -> RunConfig:
    from omarbench.collect.mujoco import HALFCHEETAH_MATD3

    return RunConfig(total_steps=2_000, num_envs=2, segment_episodes=1, updates_per_step=0.25, warmup_steps=1_000,
                     buffer_size=1_500, eval_episodes=1,
                     matd3=replace(HALFCHEETAH_MATD3, hidden=64, batch_size=128, lr_final_fraction=0.5))


def _tensor_digest(h, name: str, t) -> None:
    t = t.detach().cpu().contiguous() if isinstance(t, torch.Tensor) else torch.as_tensor(np.asarray(t))
    h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
    h.update(t.numpy().tobytes())


def _nested_digest(h, prefix: str, obj) -> None:
    if isinstance(obj, dict):
        for k in sorted(obj, key=str):
            _nested_digest(h, f"{prefix}/{k}", obj[k])
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _nested_digest(h, f"{prefix}/{i}", v)
    elif isinstance(obj, torch.Tensor):
        _tensor_digest(h, prefix, obj)
    else:
        h.update(f"{prefix}={obj!r}|".encode())


def fingerprint(run_dir: Path) -> dict[str, str]:
    """Digests of a run folder: run.json without its wall time, every experience file's arrays, every
    checkpoint's tensors and the resumable state (networks, optimisers, RNG states, counters)."""
    out = {}
    info = json.loads((run_dir / "run.json").read_text())
    info.pop("wall_time_s", None)
    # the kernel a run was made on: which golden set applies (checked by the test), not part of the digest
    info.pop("matmul_kernel", None)
    out["run.json"] = hashlib.sha256(json.dumps(info, sort_keys=True).encode()).hexdigest()
    for f in sorted((run_dir / "experience").glob("*.npz")):
        h = hashlib.sha256()
        with np.load(f) as z:
            for k in sorted(z.files):
                _tensor_digest(h, k, z[k])
        out[f"experience/{f.name}"] = h.hexdigest()
    for f in sorted((run_dir / "checkpoints").glob("*.pt")):
        actors = torch.load(f, weights_only=True)["actors"]
        joined = b"".join(state_digest(s).encode() for s in actors)
        out[f"checkpoints/{f.name}"] = hashlib.sha256(joined).hexdigest()
    h = hashlib.sha256()
    _nested_digest(h, "state", torch.load(run_dir / "state.pt", weights_only=False))
    out["state.pt"] = h.hexdigest()
    return out


class _Interrupt(Exception):
    pass


def train(task_id: str, cfg: RunConfig, run_dir: Path, seed: int, backend: str, stop_after: int | None = None):
    task = parse_task_id(task_id)
    fixed = fixed_policy_for(task)
    meta = {"fixed_policy": {"name": fixed.name, "digest": fixed.digest} if fixed is not None else None}
    run = BehaviourRun(task, run_dir, cfg, seed=seed, backend=backend, fixed_policy=fixed, meta=meta)
    if stop_after is None:
        return run.train()

    def progress(steps, total, ret):
        if steps >= stop_after:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        run.train(progress=progress)
    return run.train()


GOLDEN_INTEL: dict[str, dict[str, str]] = {
    "spread": {
        "run.json": "9180f87463b6bf33875a9078faf86235e963e193581759bfe884e01586e0e720",
        "experience/0001.npz": "e12efe46292464f813cb1d60b994764f161886ce5ede817c117b85a71bae49ad",
        "experience/0002.npz": "fd821845485fc0170c66178a4c0ca4ec755ee9d16305b479dc551e133aa09f10",
        "experience/0003.npz": "d9dcb0a73c186946c86c42c55c98a35940cc25eaff8d2f95a152d94be1fcecae",
        "checkpoints/0000.pt": "45cbf78aae92a01bfbf0f6c031d67659968b2eab11f7c574200ec79a472e0f04",
        "checkpoints/0001.pt": "4ecec559bf19a91abb397bcafcadcf173945ee1766d14320e396515d1c766c9c",
        "checkpoints/0002.pt": "5efc9078f8e84838083244a0a6a2ea9328c1ece4eea07cdcd082a929a8cbf112",
        "checkpoints/0003.pt": "b87f8afce59f53bef7d6dd4197a8833f8432fa3a76de31255a52df1e58c5c82d",
        "state.pt": "7e6bc7f33a85e0c31a902962fbbda73699bfd11808172fa186381b5b640d94bb",
    },
    "tag": {
        "run.json": "2c183f74ec6f3bf4f505e692fe3bea6fe012d8e1c766a4b8bfb76fbc7b33e0d8",
        "experience/0001.npz": "1c23863376a365e19359ccb8f7a7a691ec75a54b9d520b5acbdab396c6f28c95",
        "experience/0002.npz": "d9cb42ad678dc049f9d21646f18497375e5bdd7f667388e9a165421f390be592",
        "experience/0003.npz": "e6055bad9b1e107c0eb19972327df3f9804ff954984a8f7806eaeea1bab7b688",
        "checkpoints/0000.pt": "b2d6089d26e0e3e63a7dc7a620aeea9e63e1fc485551056c5d8a0482246eb8e9",
        "checkpoints/0001.pt": "7adb19a960686ef4709a981f15b1f38fd0322cde3c3d04abe4c06dc3dd834c1e",
        "checkpoints/0002.pt": "c63cdd6a12f14443da152edcfc9481d82b0b40c370ad9dc8b50a96c8c9ba172d",
        "checkpoints/0003.pt": "363b35a3722423b59b44c4d2894da5ae8a84e147a4b723073b450fbe1dbbfd2e",
        "state.pt": "a715ad9df996a847b5cf3d6cc408e1616d6d2faf85b15476a40694171d383cb2",
    },
    "world": {
        "run.json": "1fec7ed345087d536d75d8b79e949d6c02736bbb81bdca7baf27241fd1ddb9e6",
        "experience/0001.npz": "75e0858f215d2cb948422aa8e3d5cc36f93ef7b305cc30a41463f23c045ebedd",
        "experience/0002.npz": "02232cc3df3e1d7ead08d8b548ab1165e7f74285cb5e05a1c8701cb303f2e06e",
        "experience/0003.npz": "bb87d405178263151b16da61eefd6175daa8315b31c03f29c7912a575556b3df",
        "checkpoints/0000.pt": "0a8ad12d5279d6783f1253e150b46a7dbda7885c6e3f04113306cb9f68e8056a",
        "checkpoints/0001.pt": "927dc39ec7fcf06431ed986688ee321bcd6cb11bb712146fad5ad7ab10ce262f",
        "checkpoints/0002.pt": "6c9d03ae5c95f48be1674cc8a191340a79e5169dedb3f849d6154b59e4def2df",
        "checkpoints/0003.pt": "27366a57e3bdd27132bae41ed30ea8ea6312115b1d69775fd368e51e2c494248",
        "state.pt": "664341635eeea80ad7c46bf473d2d5c7d3081115fc4a7ab432ab92acdd00dddb",
    },
    "halfcheetah-2x3": {
        "run.json": "f2e916dc44135ab6aaff43b2d615600a2ed4da2b6956a278a40f147b59096de7",
        "experience/0001.npz": "060c779446dde25b53323c6c802dfe3a646e091d332f45aa82b31a6cb15600db",
        "checkpoints/0000.pt": "54d1c0e73b0a966323c82e4fa58950c5d95138d362219a3fd2abea922334fe2a",
        "checkpoints/0001.pt": "af85b62d11aa5de4b7795d0f35f34fd0ff732a0b43598a943469fe13b56c406b",
        "state.pt": "dc82d78e9f39672614cb431e5235061fd6060a3c86efe863c73cf234b85a884e",
    },
}

# task -> (config, seed, backend)
CASES = {"spread": (_mpe_config, 3, "numpy"), "tag": (_mpe_config, 1, "numpy"), "world": (_mpe_config, 2, "numpy"),
         "halfcheetah-2x3": (_mujoco_config, 0, "mujoco")}

# recorded on an AMD EPYC (family 26, AVX-512 with avx512_bf16, no AMX), torch 2.13.0
GOLDEN_AMD: dict[str, dict[str, str]] = {
    "spread": {
        "run.json": "64ffc6c7210de409466107d4acd60ecdf68d24eb3b3e9c3189ec2c14ba429805",
        "experience/0001.npz": "96edb28ffa1aae431651e51aa48035bc69edb2a00dde0cda5f0687e01ef170fc",
        "experience/0002.npz": "ca7d0c00a426283a01daca779e27761c215ec82cb79f396f9f8a61012c33df10",
        "experience/0003.npz": "a45c971b44786f5e3240a7adaf6517e6774353f5b6ff3a74037833730ec33a2b",
        "checkpoints/0000.pt": "45cbf78aae92a01bfbf0f6c031d67659968b2eab11f7c574200ec79a472e0f04",
        "checkpoints/0001.pt": "613dbe4bf926c09ae44447e6ce0d99cd8fbe8a2acbfff65c6ddb0002014fe271",
        "checkpoints/0002.pt": "25a1b5924533b9f251338907cd7d7e4b4617fde3c5de865ccf72d990795b3c53",
        "checkpoints/0003.pt": "a9c0dee3addddc5074861c568e2d4fff6e4d5690f4b7be7dc83bf7acfb1de4c4",
        "state.pt": "80b811cd0aa56a5f7ca874d23149f6bebbe356a71c45cf694990afba414af989",
    },
    "tag": {
        "run.json": "f59beca73755835bcfcb309cb1e9bc9d7f0b0260eba1f9d9daeba1e58fc8fb42",
        "experience/0001.npz": "f8b62d654d9448f030dadde2184c358fec77522f1bdc84d02aa76f4e12f1a15d",
        "experience/0002.npz": "0baab824df74b5257f7248512238333a653b688de5da607ed31ee6242f178cb9",
        "experience/0003.npz": "dc123f54f58fe381ac1a2655b686a9deeeaa2d2f5b3d1dbe8aa4d5c835ca7a26",
        "checkpoints/0000.pt": "b2d6089d26e0e3e63a7dc7a620aeea9e63e1fc485551056c5d8a0482246eb8e9",
        "checkpoints/0001.pt": "76d6d0f5edaaed631cabd8511636c369b24b7c2dc0856666bc8e7fc0e43cbc9e",
        "checkpoints/0002.pt": "c8e30a34403b8dcbf2a7ae6e8f97d5e600018956cd65f96beb604dc727cdf3e1",
        "checkpoints/0003.pt": "b54243d43e38663add65142503a79abe56673d2f03c03aa1d5abad3808f83d3e",
        "state.pt": "271d8d55f5225d804be654e2f37fe1b1b2b5272d48dde809cb24b1951e4f4e88",
    },
    "world": {
        "run.json": "1464406277130f7381e86cd36af0f3d37eefd40f1687f44245a9bd409e567f57",
        "experience/0001.npz": "a795ee14cb7908ea7c68a030f0f388129214efd24341d6a3f3508a630049c99d",
        "experience/0002.npz": "6dbd1bc3604d23f7839352ce952d645b811770ae953220eb72716dd520b9a8ab",
        "experience/0003.npz": "90397cc5c7fafa549293d9fcfb0b9b41431eee06a09c124cc886e60371f1bc24",
        "checkpoints/0000.pt": "0a8ad12d5279d6783f1253e150b46a7dbda7885c6e3f04113306cb9f68e8056a",
        "checkpoints/0001.pt": "2fd8a5ae55b1bd62295188d32c03a1e499b742c309026aabdd497f6fd5901dff",
        "checkpoints/0002.pt": "d6c950fd39d83d9b54c436d2a5e52835f272cbfaf294ffa8ec36eb2633caa109",
        "checkpoints/0003.pt": "f9aaeddc78bbf36356adbdd6b4e8d066d130250af42daa490c2476e01b50ad5f",
        "state.pt": "54a9f89be5b5c85f1061c03358929e6cb6f9abeff6e8a6a026b46a841aad04a0",
    },
    "halfcheetah-2x3": {
        "run.json": "ec0946dfbc8e2a7041bae70e77cc328a4bb14957245d21b37e4926d81cd46a5a",
        "experience/0001.npz": "25894cacce63c19c80be96d6a4d3d5d11e89e859d862414fa731657ecf95e9bd",
        "checkpoints/0000.pt": "54d1c0e73b0a966323c82e4fa58950c5d95138d362219a3fd2abea922334fe2a",
        "checkpoints/0001.pt": "6d4b7ab7e90e9c3dee28b7a42c0f71f2a11021b2343bcac612de338c27f80c1f",
        "state.pt": "776ab81dc120fa29ed697e2109d1fea2931a9bfc8bcb25833c2473b9b79f1c15",
    },
}

# Matrix products round differently by kernel and instruction set, so each golden set belongs to the
# (CPU vendor, torch's CPU capability) it was recorded on, with the kernels omarbench picks there by
# default: MKL's AVX-512 code on an Intel CPU; on an AMD CPU, MKL (which runs its AVX2 code there) for
# these runs' narrow networks (hidden 64, see behaviour_kernel). Elsewhere, or with OMARBENCH_MATMUL set,
# only the comparison with the reference learner runs.
GOLDEN_SETS = {("GenuineIntel", "AVX512"): GOLDEN_INTEL, ("AuthenticAMD", "AVX512"): GOLDEN_AMD}


def _golden() -> dict[str, dict[str, str]]:
    import os

    from omarbench.kernels import ENV_VAR, cpu_info

    key = (cpu_info()[0], torch.backends.cpu.get_cpu_capability())
    if os.environ.get(ENV_VAR, "auto").strip().lower() not in ("", "auto"):
        pytest.skip(f"{ENV_VAR} is set: the golden digests were recorded with the default kernels")
    if key not in GOLDEN_SETS:
        pytest.skip(f"no golden digests recorded for (vendor, capability) = {key}; "
                    f"recorded: {sorted(GOLDEN_SETS)}")
    return GOLDEN_SETS[key]


def _kernel_of(run_dir: Path) -> str:
    return json.loads((run_dir / "run.json").read_text()).get("matmul_kernel")


def _needs_mujoco(task_id):
    if task_id.startswith("halfcheetah"):
        pytest.importorskip("mujoco")
        pytest.importorskip("gymnasium_robotics")


@pytest.mark.parametrize("task_id", [
    "spread", pytest.param("tag", marks=pytest.mark.slow), pytest.param("world", marks=pytest.mark.slow),
    pytest.param("halfcheetah-2x3", marks=pytest.mark.slow)])
def test_behaviour_run_matches_the_golden_digests(task_id, tmp_path):
    from omarbench.collect.run import behaviour_kernel

    golden = _golden()
    _needs_mujoco(task_id)
    make, seed, backend = CASES[task_id]
    train(task_id, make(), tmp_path / "run", seed, backend)
    assert _kernel_of(tmp_path / "run") == behaviour_kernel(make().matd3)
    assert fingerprint(tmp_path / "run") == golden[task_id]


@pytest.mark.slow
def test_a_resumed_run_matches_the_golden_digests(tmp_path):
    golden = _golden()
    make, seed, backend = CASES["tag"]
    cfg = make()
    train("tag", cfg, tmp_path / "run", seed, backend, stop_after=cfg.total_steps // 2)
    assert fingerprint(tmp_path / "run") == golden["tag"]


@pytest.mark.parametrize("task_id", ["spread", pytest.param("tag", marks=pytest.mark.slow),
                                     pytest.param("halfcheetah-2x3", marks=pytest.mark.slow)])
def test_the_learner_equals_the_previous_implementation_to_the_bit(task_id):
    """On any CPU: the current learner and the benchmark's copy of the previous one, from the same seed and
    the same environment stream, act and update identically at the paper preset's sizes (batch 256)."""
    _needs_mujoco(task_id)
    from omarbench.perf import behaviour

    steps = 3 if task_id.startswith("halfcheetah") else 12
    warmup = behaviour._run_config(parse_task_id(task_id))[0].warmup_steps  # learning from the first window
    ref = behaviour.Loop(task_id, reference=True, fill=warmup)
    cur = behaviour.Loop(task_id, reference=False, fill=warmup)
    for _ in range(2):
        ref.window(steps)
        cur.window(steps)
        assert behaviour.learner_digest(ref.learner) == behaviour.learner_digest(cur.learner)
        assert all(np.array_equal(a, b) for a, b in zip(ref.actions, cur.actions))
    assert cur.learner.updates > 0 and cur.learner.updates == ref.learner.updates


def test_the_replay_buffer_wraps_like_the_previous_one():
    """Adds that wrap around the ring, that fill it exactly and that exceed it leave the same rows."""
    from omarbench.collect.matd3 import ReplayBuffer
    from omarbench.perf.behaviour import ReferenceBuffer

    rng = np.random.default_rng(0)
    dims = (3, 5)
    new, old = ReplayBuffer(dims, 11), ReferenceBuffer(dims, 11)
    for b in (4, 4, 5, 11, 3, 13, 1, 7):
        obs, nxt = [rng.normal(size=(b, d)) for d in dims], [rng.normal(size=(b, d)) for d in dims]
        acts, rew = rng.uniform(-1, 1, (b, 2, 2)), rng.normal(size=(b, 2))
        new.add(obs, acts, rew, nxt)
        old.add(obs, acts, rew, nxt)
        assert (new.pos, new.size) == (old.pos, old.size)
        for a, c in zip(new.obs + new.next_obs, old.obs + old.next_obs):
            assert torch.equal(a, c)
        assert torch.equal(new.actions, old.actions) and torch.equal(new.rewards, old.rewards)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    for a, c in zip(new.sample(6, g1), old.sample(6, g2)):
        for x, y in zip(a if isinstance(a, list) else [a], c if isinstance(c, list) else [c]):
            assert torch.equal(x, y) and x.is_contiguous()


def test_a_run_resumes_only_on_the_kernel_it_started_on(tmp_path):
    """A run records its matmul kernel; continuing it on the other one (whose rounding differs) is refused
    with a one-line error naming the setting that resumes it, and the run's files are left as they were."""
    from omarbench.collect.run import behaviour_kernel
    from omarbench.errors import OmarbenchError

    make, seed, backend = CASES["spread"]
    cfg = make()
    run_dir = tmp_path / "run"
    task = parse_task_id("spread")
    with pytest.raises(_Interrupt):
        BehaviourRun(task, run_dir, cfg, seed=seed, backend=backend).train(
            progress=lambda steps, total, ret: (_ for _ in ()).throw(_Interrupt()))
    info = json.loads((run_dir / "run.json").read_text())
    kernel = behaviour_kernel(cfg.matd3)
    assert info["matmul_kernel"] == kernel
    other = "mkl" if kernel == "onednn" else "onednn"
    info["matmul_kernel"] = other
    (run_dir / "run.json").write_text(json.dumps(info))
    before = fingerprint(run_dir)
    with pytest.raises(OmarbenchError, match=f"OMARBENCH_MATMUL={other} to resume"):
        BehaviourRun(task, run_dir, cfg, seed=seed, backend=backend).train()
    assert fingerprint(run_dir) == before
    if kernel == "mkl":  # a run.json from before the field existed was made on MKL: it resumes
        del info["matmul_kernel"]
        (run_dir / "run.json").write_text(json.dumps(info))
        assert BehaviourRun(task, run_dir, cfg, seed=seed, backend=backend).train()["status"] == "finished"


def test_a_run_record_states_the_settings_and_the_curve(tmp_path):
    """The committed behaviour-run records (python -m omarbench.collect.tuning record) carry every setting
    a probe may change, the kernel, an early stop, and one CSV row per checkpoint."""
    import csv

    from omarbench.collect.tuning import write_record

    make, seed, backend = CASES["spread"]
    cfg = replace(make(), matd3=replace(make().matd3, hidden=48))
    task = parse_task_id("spread")
    info = BehaviourRun(task, tmp_path / "probe", cfg, seed=seed, backend=backend).train(
        stop_when=lambda ck: ck[-1]["steps"] >= cfg.total_steps // 2)
    md = write_record(tmp_path / "probe", tmp_path / "records", "a note").read_text()
    assert "hidden 48" in md and f"gradient rounds on {info['matmul_kernel']}" in md
    assert "status **stopped early**" in md and "a note" in md
    rows = list(csv.DictReader(open(tmp_path / "records" / "probe.csv")))
    assert [int(r["steps"]) for r in rows] == [c["steps"] for c in info["checkpoints"]]
