"""Random and genetic search over joint block + channel genes, with resumable state.

The algorithms take their collaborators as arguments:
``evaluate(arch) -> {'top1', 'top5', 'loss'}``, a vectorised
``counter(blocks, channels) -> (mflops, mparams)``, a :class:`Constraints` value and an
:class:`Objective`. All randomness comes from one ``numpy.random.Generator`` whose
state is checkpointed with the population and the evaluated cache after every generation, so a
resumed search ends with the same top-k as an uninterrupted one.
"""
import json
import logging
import math
from dataclasses import dataclass, field

import numpy as np

from ..search_space import NUM_BLOCK_CHOICES, NUM_BLOCKS, NUM_CHANNEL_CHOICES, Architecture
from ..config import ConstraintConfig, piece_values
from ..files import atomic_write_text
from ..profiling import FlopsCounter

__all__ = ["COMPARISON_MODELS", "SEARCH_SCORES", "Constraints", "Objective", "SearchState",
           "random_search", "genetic_search", "sample_population"]

logger = logging.getLogger(__name__)

# the supernet scores a search can maximise: held-out top-1, or held-out cross-entropy
SEARCH_SCORES = ("acc", "loss")

# MFLOPs, M params at 224 px / 1000 classes (docs/design.md, section 4)
COMPARISON_MODELS = {
    "SinglePathOneShot": (328.0, 3.4),
    "MobileNetV3_large": (217.0, 5.4),
    "MobileNetV2_1.4": (585.0, 6.9),
    "ShuffleNetV2+_medium": (222.0, 5.6),
}


@dataclass
class Constraints:
    """Upper limits in MFLOPs / M params; ``max_score`` bounds the normalised score
    ``0.5 F / F_ref + 0.5 P / P_ref`` against the comparison model."""

    max_flops: float = math.inf
    max_params: float = math.inf
    reference: tuple = None          # (MFLOPs, M params) of the comparison model
    max_score: float = math.inf

    @classmethod
    def from_config(cls, cfg):
        """The limits of a :class:`~oneshot_nas.config.ConstraintConfig` (a search's, a
        ranking check's), or of the ``config`` dict of a saved ``search_results.json``."""
        return cls.build(**piece_values(cfg, ConstraintConfig))

    @classmethod
    def build(cls, comparison_model=None, flop_max=None, param_max=None, max_flops=None,
              max_params=None, normalised_score_max=None):
        """Relative limits (``flop_max`` x the comparison model's FLOPs, ...) or absolute ones
        (``max_flops`` MFLOPs, ``max_params`` M); absolute limits win."""
        ref = None
        relative = [flag for flag, v in (("--flop-max", flop_max), ("--param-max", param_max),
                                         ("--normalised-score-max", normalised_score_max))
                    if v is not None]
        if relative and comparison_model is None:
            raise ValueError("%s %s relative to a comparison model: add --comparison-model "
                             "(one of %s), or give absolute limits with --max-flops / "
                             "--max-params" % (" / ".join(relative),
                                               "is" if len(relative) == 1 else "are",
                                               ", ".join(COMPARISON_MODELS)))
        if comparison_model is not None:
            try:
                ref = COMPARISON_MODELS[comparison_model]
            except KeyError:
                raise ValueError("unknown --comparison-model %r; choose one of %s"
                                 % (comparison_model, ", ".join(COMPARISON_MODELS))) from None
        c = cls(reference=ref)
        if ref is not None:
            if flop_max is not None:
                c.max_flops = flop_max * ref[0]
            if param_max is not None:
                c.max_params = param_max * ref[1]
            if normalised_score_max is not None:
                c.max_score = normalised_score_max
        if max_flops is not None:
            c.max_flops = float(max_flops)
        if max_params is not None:
            c.max_params = float(max_params)
        return c

    def score(self, flops, params):
        if self.reference is None:
            return np.zeros_like(np.asarray(flops, dtype=float))
        return 0.5 * np.asarray(flops) / self.reference[0] + 0.5 * np.asarray(params) / self.reference[1]

    def satisfied(self, flops, params):
        flops, params = np.asarray(flops), np.asarray(params)
        return ((flops <= self.max_flops) & (params <= self.max_params)
                & (self.score(flops, params) <= self.max_score))

    def __str__(self):
        parts = []
        if math.isfinite(self.max_flops):
            parts.append("FLOPs <= %.1f M" % self.max_flops)
        if math.isfinite(self.max_params):
            parts.append("params <= %.3f M" % self.max_params)
        if math.isfinite(self.max_score):
            parts.append("normalised score <= %.3f" % self.max_score)
        return ", ".join(parts) or "none"


@dataclass
class Objective:
    """Fitness of an evaluated candidate.

    ``target='acc'``: the quality. ``'balanced_flop_acc'``: the quality - ratio x normalised
    score. The quality (:meth:`quality`) is the candidate's top-1 (``score='acc'``) or, with
    ``score='loss'``, exp(-mean held-out cross-entropy): the geometric mean of the probability
    given to the true class, which orders candidates exactly as the loss does and, like top-1,
    is positive and larger for better nets. With a latency table and ``target_latency`` T the
    result is multiplied by ``(lat / T) ** w`` (MnasNet soft reward w = -0.07; ``hard``: w = 0
    below T, -1 above).
    """

    target: str = "acc"
    score_acc_ratio: float = 0.0
    constraints: Constraints = field(default_factory=Constraints)
    latency_fn: object = None
    target_latency: float = None
    latency_weight: float = -0.07
    hard_latency: bool = False
    score: str = "acc"

    def __post_init__(self):
        if self.target not in ("acc", "balanced_flop_acc"):
            raise ValueError("unknown --search-target %r; choose acc or balanced_flop_acc"
                             % (self.target,))
        if self.score not in SEARCH_SCORES:
            raise ValueError("unknown --search-score %r; choose %s"
                             % (self.score, " or ".join(SEARCH_SCORES)))
        if self.target == "balanced_flop_acc" and self.constraints.reference is None:
            raise ValueError("--search-target balanced_flop_acc subtracts the normalised score "
                             "against a comparison model: add --comparison-model (one of %s)"
                             % ", ".join(COMPARISON_MODELS))
        if self.hard_latency and not self.target_latency:
            raise ValueError("--hard-latency needs --target-latency (and --latency-table)")

    def quality(self, res):
        """The candidate's supernet score as the objective uses it (see the class)."""
        if self.score == "acc":
            return float(res["top1"])
        if res.get("loss") is None:
            raise ValueError("--search-score loss needs each candidate's held-out loss; this "
                             "result has none")
        loss = float(res["loss"])
        # a candidate whose outputs overflow has no usable prediction: the worst quality, 0
        return math.exp(-loss) if math.isfinite(loss) else 0.0

    def __call__(self, quality, flops, params, latency=None):
        value = quality
        if self.target == "balanced_flop_acc":
            value = quality - self.score_acc_ratio * float(self.constraints.score(flops, params))
        if self.target_latency and latency is not None:
            ratio = latency / self.target_latency
            if self.hard_latency:
                w = 0.0 if ratio <= 1 else -1.0
            else:
                w = self.latency_weight
            value = value * ratio ** w
        return float(value)


def _screened(draw, n, counter, constraints, max_tries, start=None):
    """Call ``draw()`` for candidate gene arrays until ``n`` satisfy the constraints (screened
    vectorised; ``start`` arrays count as already qualified). ValueError after ``max_tries``."""
    blocks_out, channels_out = ([start[0]], [start[1]]) if start is not None else ([], [])
    have, tried = sum(len(b) for b in blocks_out), 0
    while have < n:
        if tried >= max_tries:
            raise ValueError("the constraints (%s) admit no architecture: %d of %d candidates "
                             "qualified; relax them" % (constraints, have, tried))
        b, c = draw()
        tried += len(b)
        ok = constraints.satisfied(*counter(b, c))
        blocks_out.append(b[ok])
        channels_out.append(c[ok])
        have += int(ok.sum())
    return np.concatenate(blocks_out)[:n], np.concatenate(channels_out)[:n]


def sample_population(rng, n, counter, constraints, fixed_blocks=None, fixed_channels=None,
                      channel_range=(0, NUM_CHANNEL_CHOICES - 1), max_tries=200000):
    """``n`` random gene arrays that satisfy the constraints (screened vectorised).

    Raises ValueError after ``max_tries`` samples when the constraints admit too few.
    """
    m = 1024

    def draw():
        b = (np.tile(fixed_blocks, (m, 1)) if fixed_blocks is not None
             else rng.integers(0, NUM_BLOCK_CHOICES, (m, NUM_BLOCKS)))
        c = (np.tile(fixed_channels, (m, 1)) if fixed_channels is not None
             else rng.integers(channel_range[0], channel_range[1] + 1, (m, NUM_BLOCKS)))
        return b, c
    return _screened(draw, n, counter, constraints, max_tries)


class SearchState:
    """Everything a search needs to continue: position, population, results, RNG, history."""

    def __init__(self, mode, seed, settings=None):
        self.mode, self.seed = mode, seed
        self.settings = dict(settings or {})    # what a resumed run must share (flag -> value)
        self.rng = np.random.default_rng(seed)
        self.step = 0                       # generations done / random candidates drawn
        self.population = None              # (blocks, channels) arrays
        self.results = {}                   # Architecture -> record dict
        self.history = []                   # per generation: best / mean fitness

    def to_json(self):
        pop = None if self.population is None else [a.tolist() for a in self.population]
        return json.dumps({
            "mode": self.mode, "seed": self.seed, "settings": self.settings, "step": self.step,
            "population": pop,
            "rng": self.rng.bit_generator.state, "history": self.history,
            "results": [dict(r, arch=json.loads(a.to_json())) for a, r in self.results.items()],
        })

    @classmethod
    def from_json(cls, text):
        obj = json.loads(text)
        if not isinstance(obj, dict):
            raise ValueError("not a JSON object")
        for name, kind, what in (("mode", str, "a search mode"), ("seed", int, "an integer"),
                                 ("step", int, "an integer"), ("rng", dict, "a generator state"),
                                 ("history", list, "a list"), ("results", list, "a list")):
            if name not in obj:
                raise ValueError("field %r is missing" % name)
            if not isinstance(obj[name], kind):
                raise ValueError("field %r is %r, not %s" % (name, obj[name], what))
        state = cls(obj["mode"], obj["seed"], obj.get("settings"))
        state.step = obj["step"]
        if obj["population"] is not None:
            state.population = tuple(np.array(a, dtype=np.int64) for a in obj["population"])
        state.rng.bit_generator.state = obj["rng"]
        state.history = obj["history"]
        for rec in obj["results"]:
            arch = Architecture.from_json(rec.pop("arch"))
            state.results[arch] = rec
        return state

    def save(self, path):
        atomic_write_text(path, self.to_json())

    @classmethod
    def load(cls, path):
        try:
            with open(path) as f:
                return cls.from_json(f.read())
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ValueError("search checkpoint %s cannot be read: %s" % (path, err)) from None


def _record(state, arch, evaluate, counter, objective, latency_fn, on_evaluated=None):
    if arch in state.results:
        return state.results[arch]
    res = evaluate(arch)
    flops, params = FlopsCounter.wrap(counter).one(arch)
    lat = latency_fn(arch) if latency_fn is not None else None
    rec = {"top1": res["top1"], "top5": res["top5"], "flops": flops, "params": params,
           "latency_ms": lat, "loss": res.get("loss")}
    rec["fitness"] = objective(objective.quality(rec), rec["flops"], rec["params"], lat)
    state.results[arch] = rec
    if on_evaluated:
        on_evaluated(state, arch, rec)
    return rec


def top_k(state, k):
    ranked = sorted(state.results.items(), key=lambda kv: (-kv[1]["fitness"], kv[0].to_json()))
    return ranked[:k]


def random_search(state, evaluate, counter, constraints, objective, iters=250,
                  fixed_blocks=None, fixed_channels=None, checkpoint=None, checkpoint_every=10,
                  latency_fn=None, progress=None, on_evaluated=None):
    """Evaluate ``iters`` random qualified candidates; returns the state.

    ``progress(state, record)`` is called after every candidate, ``on_evaluated(state, arch,
    record)`` after every new evaluation (not for a candidate already in ``state.results``).
    """
    while state.step < iters:
        b, c = sample_population(state.rng, 1, counter, constraints, fixed_blocks, fixed_channels)
        arch = Architecture(b[0], c[0])
        rec = _record(state, arch, evaluate, counter, objective, latency_fn, on_evaluated)
        state.step += 1
        if progress:
            progress(state, rec)
        if checkpoint and (state.step % checkpoint_every == 0 or state.step == iters):
            checkpoint(state)
    return state


def genetic_search(state, evaluate, counter, constraints, objective, population_size=50,
                   retain_length=10, random_select=0.1, mutate_chance=0.1, generations=20,
                   fixed_blocks=None, fixed_channels=None, checkpoint=None, latency_fn=None,
                   progress=None, max_tries=200000, on_evaluated=None):
    """Genetic search of docs/design.md, section 4; returns the state (``state.results`` holds every
    evaluated candidate, ``state.history`` best / mean fitness per generation).

    ``progress(state, None)`` is called after every generation, ``on_evaluated(state, arch,
    record)`` after every new evaluation (a generation can take long on ImageNet).
    """
    rng = state.rng
    if state.population is None:
        state.population = sample_population(rng, population_size, counter, constraints,
                                             fixed_blocks, fixed_channels)
    while state.step < generations:
        blocks, channels = state.population
        archs = [Architecture(b, c) for b, c in zip(blocks, channels)]
        fitness = np.array([_record(state, a, evaluate, counter, objective, latency_fn,
                                    on_evaluated)["fitness"] for a in archs])
        order = np.argsort(-fitness, kind="stable")
        state.history.append({"generation": state.step, "best": float(fitness.max()),
                              "mean": float(fitness.mean()),
                              "best_arch": json.loads(archs[order[0]].to_json())})
        logger.info("generation %d: best fitness %.4f, mean %.4f, %d evaluated so far",
                    state.step, fitness.max(), fitness.mean(), len(state.results))
        # selection: the best retain_length, plus others kept with probability random_select
        keep = list(order[:retain_length])
        keep += [i for i in order[retain_length:] if rng.random() < random_select]
        pb, pc = blocks[keep], channels[keep]
        m = 256

        def breed():
            # uniform crossover of random parent pairs, then per-gene mutation
            ia, ib = rng.integers(0, len(pb), m), rng.integers(0, len(pb), m)
            mask_b = rng.random((m, NUM_BLOCKS)) < 0.5
            mask_c = rng.random((m, NUM_BLOCKS)) < 0.5
            cb = np.where(mask_b, pb[ia], pb[ib])
            cc = np.where(mask_c, pc[ia], pc[ib])
            if fixed_blocks is None:
                mut = rng.random(cb.shape) < mutate_chance
                cb = np.where(mut, rng.integers(0, NUM_BLOCK_CHOICES, cb.shape), cb)
            if fixed_channels is None:
                mut = rng.random(cc.shape) < mutate_chance
                cc = np.where(mut, rng.integers(0, NUM_CHANNEL_CHOICES, cc.shape), cc)
            return cb, cc
        state.population = _screened(breed, population_size, counter, constraints, max_tries,
                                     start=(pb, pc))
        state.step += 1
        if progress:
            progress(state, None)
        if checkpoint:
            checkpoint(state)
    return state
