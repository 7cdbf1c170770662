"""Batched NumPy engine for the MPE tasks (backend ``numpy``): E worlds stepped at once, float64.

It reproduces :mod:`omarbench.tasks.mpe_ref` (both flavors, every task) operation for operation, so
positions, velocities, observations and rewards agree with the reference to the last bits in practice
(the tests allow 1e-9). What it copies from the reference, per step:

* **Action force.** ``paper``: ``(a · accel) · accel`` (the authors' doubled gain; ``a · 5`` for agents
  without ``accel``), actions not clipped. ``mpe2``: the action is clipped to [-1, 1], rounded to
  float32 (mpe2's 5-D continuous action) and multiplied by ``accel`` (5 without).
* **Contact force** between every pair of colliding entities, as ``mpe2``'s ``get_collision_force``:
  ``100 · Δp / |Δp| · softplus(-(|Δp| - r_a - r_b) / 1e-3) · 1e-3``; immovable landmarks receive none.
  Each agent's force is summed in the reference's order (its action, then its partners by index).
* **Integration.** ``paper``: damp and add force to the velocity, clip the speed, then move.
  ``mpe2``: move with the old velocity first, then damp, add force, clip.
* **Rewards and observations** of each task and flavor, including the stock world_comm forest
  visibility rules (hidden agents observed as zeros, the leader sees everyone) and the leader's silent
  4-D channel.

Internally the state is kept entity-major, ``[2, n_entities, E]`` (x/y, entity, environment), so every
array operation runs over the environment axis; ``get_state``/``set_state`` speak ``[E, n_entities, 2]``.

**Reset stream.** Initial states follow the reference's distributions (agents in [-1, 1]², spread with
N > 3 in the paper flavor entirely in [-2, 2]², tag/world landmarks in [-0.9, 0.9]², velocities zero)
but not mpe2's random stream. The position of entity ``e`` on axis ``d`` for an episode reset with seed
``s`` is ``low_e + (high_e - low_e) · U(s, 2e + d)``, where ``U(s, k)`` is the top 53 bits of the
SplitMix64 output ``mix(mix(s + C) + (k + 1) · γ)`` scaled to [0, 1) (γ = 0x9E3779B97F4A7C15,
C = 0x6F6D6172, ``mix`` the SplitMix64 finaliser, arithmetic mod 2⁶⁴). It is a pure function of the
seed, computed for all resetting environments at once: the same seed always gives the same episode,
whatever the batch size.
"""

from __future__ import annotations

import numpy as np

from omarbench.tasks.prey import FixedPolicy
from omarbench.tasks.spec import Task
from omarbench.tasks.vec import VecEnv

DT = 0.1
DAMPING = 0.25
CONTACT_FORCE = 100.0
CONTACT_MARGIN = 1e-3
DEFAULT_SENSITIVITY = 5.0
SPREAD_LOCAL_RATIO = 0.5
# softplus(-gap / margin) is exactly 0.0 in float64 once the gap between two bodies exceeds this
# (e^-750 underflows to 0): such pairs exert no force and are skipped
_SOFTPLUS_REACH = 0.75

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_SEED_SALT = np.uint64(0x6F6D6172)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on uint64 arrays (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def seeded_uniform(seeds: np.ndarray, n: int) -> np.ndarray:
    """``[len(seeds), n]`` uniforms in [0, 1): draw ``k`` of seed ``s`` is ``U(s, k)`` (module docstring)."""
    s = np.asarray(seeds, dtype=np.int64).reshape(-1).view(np.uint64)
    key = _mix64(s + _SEED_SALT)
    ctr = np.arange(1, n + 1, dtype=np.uint64) * _GAMMA
    bits = _mix64(key[:, None] + ctr[None, :])
    return (bits >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def _bound(x: np.ndarray) -> np.ndarray:
    """Out-of-arena penalty on |position| (per axis), elementwise as the reference's ``bound``."""
    out = np.zeros_like(x)
    mid = (x >= 0.9) & (x < 1.0)
    out[mid] = (x[mid] - 0.9) * 10
    hi = x >= 1.0
    if hi.any():  # exp(3) > 10: clamping the exponent there changes nothing and avoids overflow
        out[hi] = np.minimum(np.exp(np.minimum(2 * x[hi] - 2, 3.0)), 10.0)
    return out


class NumpyVecEnv(VecEnv):
    """E copies of a task in one set of NumPy arrays (see the module docstring for the exact rules)."""

    def __init__(self, task: Task, num_envs: int, seed: int = 0, fixed_policy: FixedPolicy | None = None):
        super().__init__(task, num_envs, seed, fixed_policy)
        self.paper = task.flavor == "paper"
        self.name = task.name
        n_a = task.n_agents
        self.n_agents = n_a
        if task.name == "spread":
            self._landmark_names = [f"landmark {i}" for i in range(n_a)]
            sizes = [0.15] * n_a + [0.05] * n_a
            self.n_colliders = n_a  # spread landmarks do not collide
            accel = [None] * n_a
            max_speed = [np.inf] * n_a
            half = 2.0 if (self.paper and n_a > 3) else 1.0
            low_high = [(-half, half)] * (2 * n_a)
        elif task.name == "tag":
            self._landmark_names = ["landmark 0", "landmark 1"]
            sizes = [0.075] * 3 + [0.05] + [0.2, 0.2]
            self.n_colliders = 6  # agents and both obstacles
            accel, max_speed = [3.0] * 3 + [4.0], [1.0] * 3 + [1.3]
            low_high = [(-1.0, 1.0)] * 4 + [(-0.9, 0.9)] * 2
        elif task.name == "world":
            self._landmark_names = ["landmark 0", "food 0", "food 1", "forest 0", "forest 1"]
            sizes = [0.075] * 3 + [0.045] + [0.2, 0.03, 0.03, 0.3, 0.3]
            self.n_colliders = 5  # agents and the obstacle; food and forests do not collide
            accel, max_speed = [3.0] * 3 + [4.0], [1.0] * 3 + [1.3]
            low_high = [(-1.0, 1.0)] * 4 + [(-0.9, 0.9)] * 5
        else:
            raise ValueError(f"no engine for task {task.name!r}")
        self.sizes = np.array(sizes, dtype=np.float64)
        self.n_entities = len(sizes)
        self.n_landmarks = self.n_entities - n_a
        E, n, nc = num_envs, self.n_entities, self.n_colliders

        # action gains [n_a, 1]: paper (a * g1) * g2, mpe2 f32(clip(a)) * g1
        g1 = np.array([a if a is not None else DEFAULT_SENSITIVITY for a in accel])
        g2 = np.array([a if a is not None else 1.0 for a in accel])
        self._g1, self._g2 = g1[:, None], g2[:, None]
        self._has_accel2 = any(a is not None for a in accel)
        self._max_speed = np.array(max_speed)[:, None]
        self._clip_speed = bool(np.isfinite(self._max_speed).any())
        self._low = np.array([lh[0] for lh in low_high])
        self._high = np.array([lh[1] for lh in low_high])

        # contact pairs: agents (rows) against colliders (columns, entities 0..nc-1). Beyond ``reach`` the
        # softplus underflows to exactly 0, so only nearer pairs are computed; an agent never meets itself.
        self._dmin_contact = self.sizes[:n_a, None] + self.sizes[None, :nc]
        reach = self._dmin_contact + _SOFTPLUS_REACH
        reach[np.arange(n_a), np.arange(n_a)] = -np.inf
        self._reach_ji = np.ascontiguousarray(reach.T)[:, :, None]  # [nc, n_a, 1]
        self._near_buf = np.empty((nc, n_a, E), dtype=bool)  # scratch, never handed out
        self._pair_buf = np.empty((2, nc, n_a, E))  # scratch: contact force of each (partner, agent, env)
        self._dmin_ji = np.ascontiguousarray(self._dmin_contact.T).reshape(-1)  # pair q = j * n_a + i
        jq, iq = np.divmod(np.arange(nc * n_a), n_a)
        self._pair_in_D = iq * n + jq
        self._dmin_agents = (self.sizes[:n_a, None] + self.sizes[None, :n_a])[:, :, None]
        self._not_self = ~np.eye(n_a, dtype=bool)[:, :, None]
        others = [[j for j in range(n_a) if j != i] for i in range(n_a)]
        self._others = np.array(others, dtype=np.int64).reshape(n_a, n_a - 1)
        self._build_observation_tables(others)

        self.P = np.zeros((2, n, E))  # positions
        self.V = np.zeros((2, n, E))  # velocities
        self._geom: tuple[np.ndarray, np.ndarray] | None = None
        self._R_buf = np.empty((2, n_a, n, E))
        self._D_buf = np.empty((n_a, n, E))

    # -- description ----------------------------------------------------------------------------
    @property
    def entity_names(self) -> list[str]:
        return [a.name for a in self.task.agents] + list(self._landmark_names)

    @property
    def entity_sizes(self) -> np.ndarray:
        return self.sizes.copy()

    # -- state ------------------------------------------------------------------------------------
    def get_state(self) -> tuple[np.ndarray, np.ndarray]:
        return (np.ascontiguousarray(self.P.transpose(2, 1, 0)), np.ascontiguousarray(self.V.transpose(2, 1, 0)))

    def set_state(self, pos: np.ndarray, vel: np.ndarray) -> list[np.ndarray]:
        want = (self.num_envs, self.n_entities, 2)
        pos, vel = np.asarray(pos, np.float64), np.asarray(vel, np.float64)
        if pos.shape != want or vel.shape != want:
            raise ValueError(f"state must be shaped {want} for {self.task.id}, got {pos.shape} and {vel.shape}")
        self.P[...] = pos.transpose(2, 1, 0)
        self.V[...] = vel.transpose(2, 1, 0)
        self._geom = None
        self._obs = self._observe()
        return self._obs

    def _reset_envs(self, idx: np.ndarray, seeds: np.ndarray) -> None:
        idx = np.asarray(idx)
        u = seeded_uniform(seeds, 2 * self.n_entities).reshape(len(idx), self.n_entities, 2)
        pos = self._low[None, :, None] + (self._high - self._low)[None, :, None] * u
        self.P[:, :, idx] = pos.transpose(2, 1, 0)
        self.V[:, :, idx] = 0.0
        self._geom = None

    def _geometry(self) -> tuple[np.ndarray, np.ndarray]:
        """Every entity relative to every agent, ``R[2, n_a, n, E] = p_entity - p_agent``, and ``|R|``."""
        if self._geom is None:  # internal scratch, overwritten at the next change of state
            P, R, D = self.P, self._R_buf, self._D_buf
            np.subtract(P[:, None, :, :], P[:, : self.n_agents, None, :], out=R)
            np.square(R[0], out=D)
            D += np.square(R[1])
            np.sqrt(D, out=D)
            self._geom = (R, D)
        return self._geom

    # -- physics ----------------------------------------------------------------------------------
    def _action_force(self, actions: np.ndarray) -> np.ndarray:
        a = np.ascontiguousarray(np.asarray(actions, np.float64).transpose(2, 1, 0))  # [2, n_a, E]
        if self.paper:
            u = a * self._g1
            if self._has_accel2:
                u *= self._g2
            return u
        a32 = np.clip(a, -1.0, 1.0).astype(np.float32).astype(np.float64)
        return a32 * self._g1

    def _contact_force(self, force: np.ndarray) -> np.ndarray:
        """Add every agent's contact forces to ``force`` [2, n_a, E] in place (reference order).

        Only pairs within reach are computed (flat indices); each agent's force then receives its
        partners' contributions one partner at a time, in index order, as mpe2 accumulates them.
        """
        R, D = self._geometry()
        nc, E = self.n_colliders, self.num_envs
        near = np.less(D[:, :nc].transpose(1, 0, 2), self._reach_ji, out=self._near_buf)  # [nc, n_a, E]
        flat = np.flatnonzero(near)  # (j * n_a + i) * E + e, sorted by partner j
        if flat.size == 0:
            return force
        q, e = np.divmod(flat, E)  # q = j * n_a + i names the pair
        dflat = self._pair_in_D.take(q) * E + e  # the pair's place in D [n_a, n, E]
        d = D.reshape(-1).take(dflat)
        x = self._dmin_ji.take(q)
        x -= d  # = -(d - d_min), exactly
        x /= CONTACT_MARGIN
        pen = np.logaddexp(0.0, x)
        pen *= CONTACT_MARGIN
        T = R.reshape(2, -1).take(dflat, axis=1)
        T *= CONTACT_FORCE
        T /= d
        T *= pen
        # back to dense [partner, agent, env] (zero where out of reach), then one partner at a time
        dense = self._pair_buf
        for c in range(2):
            dc = dense[c].reshape(-1)
            dc.fill(0.0)
            dc[flat] = T[c]
        for jj in range(nc):
            force -= dense[:, jj]
        return force

    def _step_all(self, actions: np.ndarray) -> np.ndarray:
        n_a = self.n_agents
        force = self._contact_force(self._action_force(actions))
        P, V = self.P[:, :n_a], self.V[:, :n_a]
        if not self.paper:  # stock mpe2 moves with the old velocity first
            P += V * DT
        V *= 1 - DAMPING
        V += force * DT
        if self._clip_speed:
            speed = np.sqrt(np.square(V[0]) + np.square(V[1]))
            over = speed > self._max_speed
            if over.any():
                ms = np.broadcast_to(self._max_speed, over.shape)[over]
                for d in range(2):
                    Vd = V[d]
                    Vd[over] = Vd[over] / speed[over] * ms
        if self.paper:
            P += V * DT
        self._geom = None
        return self._rewards().T.copy()

    # -- rewards ----------------------------------------------------------------------------------
    def _rewards(self) -> np.ndarray:
        """Per-agent rewards ``[n_a, E]`` of the current state."""
        if self.name == "spread":
            return self._spread_rewards()
        return self._predator_prey_rewards()

    def _agent_collisions(self) -> np.ndarray:
        _, D = self._geometry()
        return (D[:, : self.n_agents] < self._dmin_agents) & self._not_self

    def _spread_rewards(self) -> np.ndarray:
        n_a = self.n_agents
        _, D = self._geometry()
        nearest = D[:, n_a:].min(axis=0)  # [n_landmarks, E]: closest agent to each landmark
        coll = self._agent_collisions()
        if self.paper:
            with np.errstate(divide="ignore"):
                per_lm = np.minimum(1.0 / nearest, 10.0)
            total = per_lm[0].copy()
            for row in per_lm[1:]:
                total += row
            rew = np.repeat(total[None], n_a, axis=0)
            count = coll.sum(axis=1)
            for k in range(1, int(count.max(initial=0)) + 1):  # -5 per collision, one at a time
                rew -= 5.0 * (count >= k)
            return rew
        glob = -nearest[0]
        for row in nearest[1:]:
            glob -= row
        local = -coll.sum(axis=1).astype(np.float64)
        return glob * (1 - SPREAD_LOCAL_RATIO) + local * SPREAD_LOCAL_RATIO

    def _predator_prey_rewards(self) -> np.ndarray:
        _, D = self._geometry()
        E = self.num_envs
        world = self.name == "world"
        bonus = 5.0 if world else 10.0
        preds, prey = (0, 1, 2), 3
        caught = [D[k, prey] < self._dmin_agents[k, prey, 0] for k in preds]  # prey touches predator k
        d_prey = [D[k, prey] for k in preds]
        rew = np.empty((4, E))
        bounds = [_bound(np.abs(self.P[d, prey])) for d in range(2)]
        if world:
            food = (5, 6)
            food_d = [D[prey, f] for f in food]
            food_hit = [D[prey, f] < self.sizes[prey] + self.sizes[f] for f in food]
            min_food = np.minimum(food_d[0], food_d[1])
        if self.paper:
            pred = np.zeros(E)
            for d in d_prey:  # one prey: its distance is the minimum over prey
                pred -= 0.1 * d
            for c in caught:
                pred += bonus * c
            rew[:3] = pred
            r = np.zeros(E)
            for d in d_prey:
                r += 0.1 * d
            for c in caught:
                r -= bonus * c
            weight = 2.0 if world else 1.0
            for b in bounds:
                r -= weight * b
            if world:
                for h in food_hit:
                    r += 2.0 * h
                r += 0.05 * min_food  # sign as in the authors' code
            rew[3] = r
            return rew
        n_caught = np.zeros(E)
        for c in caught:
            n_caught += c
        if world:  # each predator: -0.1 x its own distance to the prey, then +5 per catch, one at a time
            for k in preds:
                rew[k] = -(0.1 * d_prey[k])
                for c in caught:
                    rew[k] += bonus * c
        else:
            rew[:3] = bonus * n_caught  # integers: exact in any order
        r = -bonus * n_caught
        for b in bounds:
            r -= (2 * b) if world else b
        if world:
            for h in food_hit:
                r += 2.0 * h
            r -= 0.05 * min_food
        rew[3] = r
        return rew

    # -- observations -------------------------------------------------------------------------------
    def _build_observation_tables(self, others: list[list[int]]) -> None:
        """Each agent's observation is ``F[:, plus] - F[:, minus]`` for a per-step feature table ``F``.

        ``F`` columns: positions (entity ``e``, axis ``d`` at ``2e + d``), the agents' velocities, a zero
        and, in world, each agent's in-forest flags (+1 / -1). Relative positions subtract the observer's
        position; everything else subtracts the zero column (exact).
        """
        n_a, n = self.n_agents, self.n_entities
        self._vcol = 2 * n
        self._zcol = self._vcol + 2 * n_a
        self._fcol = self._zcol + 1
        n_forests = 2 if self.name == "world" else 0
        self._n_features = self._fcol + n_forests * n_a
        pc = lambda e, d: 2 * e + d  # noqa: E731
        vc = lambda i, d: self._vcol + 2 * i + d  # noqa: E731
        z = self._zcol
        self._plus, self._minus, self._hide = [], [], []
        for i in range(n_a):
            cols: list[tuple[int, int]] = [(vc(i, 0), z), (vc(i, 1), z), (pc(i, 0), z), (pc(i, 1), z)]
            cols += [(pc(e, d), pc(i, d)) for e in range(n_a, n) for d in range(2)]
            hide = []  # stock world: (columns, other slot) zeroed when that other agent is hidden
            for k, j in enumerate(others[i]):
                hide.append((slice(len(cols), len(cols) + 2), k))
                cols += [(pc(j, d), pc(i, d)) for d in range(2)]
            flags = [(self._fcol + 2 * i + f, z) for f in range(n_forests)]
            if self.name == "spread":
                cols += [(z, z)] * (2 * (n_a - 1))  # the others' silent comm channels
            elif i < 3:  # predators: the prey's velocity (world: then the forest flags)
                hide.append((slice(len(cols), len(cols) + 2), n_a - 2))
                cols += [(vc(3, d), z) for d in range(2)] + flags
                if self.name == "world" and not self.paper:
                    cols += [(z, z)] * 4  # the leader's silent 4-D channel
            else:  # the prey: forest flags (world); it sees no other prey's velocity
                cols += flags
            assert len(cols) == self.task.obs_dims[i]
            self._plus.append(np.array([c[0] for c in cols], dtype=np.intp))
            self._minus.append(np.array([c[1] for c in cols], dtype=np.intp))
            self._hide.append(hide)

    def _observe(self) -> list[np.ndarray]:
        n_a, n, E = self.n_agents, self.n_entities, self.num_envs
        F = np.empty((E, self._n_features))
        F[:, : 2 * n].reshape(E, n, 2)[...] = self.P.transpose(2, 1, 0)
        F[:, self._vcol : self._zcol].reshape(E, n_a, 2)[...] = self.V[:, :n_a].transpose(2, 1, 0)
        F[:, self._zcol] = 0.0
        vis = None
        if self.name == "world":
            _, D = self._geometry()
            forests = (7, 8)
            radius = self.sizes[:n_a, None]
            in_forest = np.stack([D[:, f] < radius + self.sizes[f] for f in forests])  # [2, n_a, E]
            F[:, self._fcol :].reshape(E, n_a, 2)[...] = np.where(in_forest, 1.0, -1.0).transpose(2, 1, 0)
            if not self.paper:
                vis = self._world_visibility(in_forest)  # [n_a, n_a - 1, E]
        obs = []
        for i in range(n_a):
            o = F.take(self._plus[i], axis=1)
            o -= F.take(self._minus[i], axis=1)
            if vis is not None:
                for cols, k in self._hide[i]:
                    np.copyto(o[:, cols], 0.0, where=~vis[i, k][:, None])
            obs.append(o)
        return obs

    def _world_visibility(self, in_forest: np.ndarray) -> np.ndarray:
        """Stock world_comm: can observer i see other j? ``[n_a, n_a - 1, E]`` in the observation's order."""
        n_a = self.n_agents
        inf = in_forest  # [n_forests, n_a, E]
        oth = inf[:, self._others]  # [n_forests, n_a, n_a - 1, E]
        same_forest = (inf[:, :, None] & oth).any(axis=0)
        both_out = ~inf.any(axis=0)[:, None] & ~oth.any(axis=0)
        leader = np.zeros((n_a, 1, 1), dtype=bool)
        leader[0] = True  # agent 0 is the leader adversary: it sees everyone
        return same_forest | both_out | leader
