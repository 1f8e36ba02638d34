"""The ImageNet-style trainer for the supernet and fixed subnets (GluonCV recipe + SPOS)."""
import json
import logging
import math
import os
import time
from dataclasses import dataclass

import mxnet as mx
import numpy as np
from gluoncv.loss import DistillationSoftmaxCrossEntropyLoss
from gluoncv.utils import LRScheduler, LRSequential
from mxnet import autograd, gluon, nd
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from .. import interrupts
from ..accuracy import cross_entropy, topk_hits
from ..deploy.predict import meta_for_data, write_meta
from ..files import atomic_write_json
from ..models import PRESETS, get_model
from ..models.params import load_params_checked
from ..nn import recalibrate_bn, share_bn_statistics
from ..profiling import FlopsCounter
from ..search_space import Architecture
from .checkpoint import (CheckpointError, check_writable_dir, latest_checkpoint, load_meta,
                         load_trainer_states, remove_partial_files, remove_replaced_best,
                         restore_rng, save_checkpoint, save_parameters)
from . import watchdog
from .config import TrainConfig
from .samplers import ConstraintBox, Prefetcher, make_sampler

__all__ = ["train", "TrainingRun", "build_model", "make_lr_scheduler", "make_trainer",
           "evaluate", "refuse_another_runs_files"]

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# construction helpers
def build_model(cfg, classes):
    """The network named by ``cfg.model`` with the configured options.

    A preset keeps its own SE / tail setting unless ``use_se`` / ``last_conv_after_pooling``
    turn it on (``--model OneShot --use-se`` is OneShot's architecture with SE).
    """
    kwargs = dict(classes=classes, channels_layout=cfg.channels_layout, input_size=cfg.input_size)
    if cfg.model in PRESETS:
        if cfg.block_choices or cfg.channel_choices:
            raise ValueError("--block-choices / --channel-choices cannot change the preset "
                             "--model %s; use --model ShuffleNas_fixArch with them" % cfg.model)
        if cfg.use_se:
            kwargs["use_se"] = True
        if cfg.last_conv_after_pooling:
            kwargs["last_conv_after_pooling"] = True
    else:
        kwargs.update(use_se=cfg.use_se, last_conv_after_pooling=cfg.last_conv_after_pooling)
    if cfg.is_supernet:
        kwargs["use_all_blocks"] = cfg.use_all_blocks
        kwargs["affine_free_bn"] = cfg.affine_free_bn
    elif cfg.model == "ShuffleNas_fixArch":
        if not cfg.block_choices:
            raise ValueError("--model ShuffleNas_fixArch needs --block-choices (and "
                             "--channel-choices)")
        kwargs["architecture"] = Architecture.parse(cfg.block_choices, cfg.channel_choices)
    return get_model(cfg.model, **kwargs)


def make_lr_scheduler(cfg, iters_per_epoch, base_lr):
    """GluonCV LRSequential: linear warm-up then step / poly / cosine."""
    if cfg.lr_mode not in ("step", "poly", "cosine"):
        raise ValueError("unknown --lr-mode %r; choose step, poly or cosine" % cfg.lr_mode)
    if cfg.lr_decay_period > 0:
        steps = list(range(cfg.lr_decay_period, cfg.num_epochs, cfg.lr_decay_period))
    else:
        steps = [int(e) for e in str(cfg.lr_decay_epoch).split(",") if e.strip()]
    steps = [e - cfg.warmup_epochs for e in steps]
    if (cfg.num_epochs - cfg.warmup_epochs) * iters_per_epoch < 2:
        # GluonCV's schedulers divide by (iterations - 1): a one-step run keeps the base lr
        return LRScheduler("constant", base_lr=base_lr, nepochs=max(cfg.num_epochs, 1),
                           iters_per_epoch=iters_per_epoch)
    return LRSequential([
        LRScheduler("linear", base_lr=cfg.warmup_lr, target_lr=base_lr,
                    nepochs=cfg.warmup_epochs, iters_per_epoch=iters_per_epoch),
        LRScheduler(cfg.lr_mode, base_lr=base_lr, target_lr=0,
                    nepochs=cfg.num_epochs - cfg.warmup_epochs, iters_per_epoch=iters_per_epoch,
                    step_epoch=steps, step_factor=cfg.lr_decay, power=2),
    ])


def make_trainer(net, cfg, iters, ctx, hvd=None, size=1):
    """The gluon (or Horovod) Trainer of ``net``: ``cfg.optimizer`` at ``cfg.lr`` (times the
    number of Horovod workers ``size``) on the configured schedule.

    On several devices (kvstore ``device``) the kvstore is set up at once: MXNet broadcasts
    every parameter from the first device when it does so, BN running statistics included,
    which at the first step would overwrite the statistics the other devices have just
    computed. Set up here, each device keeps the statistics of its part of every batch.
    """
    base_lr = cfg.lr * size      # linear scaling with the number of Horovod workers
    scheduler = make_lr_scheduler(cfg, iters, base_lr)
    # MXNet sets the scheduler's base_lr to the optimizer's learning_rate when they differ;
    # Adam's default (0.001) would replace the flag's value: state it on both
    scheduler.base_lr = base_lr
    opt_params = {"wd": cfg.wd, "lr_scheduler": scheduler, "learning_rate": base_lr}
    if cfg.optimizer in ("nag", "sgd"):
        opt_params["momentum"] = cfg.momentum
    if cfg.dtype != "float32":
        opt_params["multi_precision"] = True
    if hvd is not None:
        _check_same_weights(net, hvd)
        return _horovod_trainer(hvd)(net.collect_params(), cfg.optimizer, opt_params)
    # Several devices: the kvstore sums the gradients and every device applies the update
    # itself (update_on_kvstore=False). Updated on the kvstore, every parameter would be
    # pushed at every step, so that the blocks off the sampled path would move with their
    # stale gradients (and weight decay / momentum) instead of being skipped as on one device.
    trainer = _Trainer(net.collect_params(), cfg.optimizer, opt_params,
                       kvstore="device" if len(ctx) > 1 else None,
                       update_on_kvstore=False if len(ctx) > 1 else None)
    if len(ctx) > 1:
        # mxnet 1.9.1 has no public call for this; step(), save_states() and load_states()
        # run the same two methods lazily
        trainer._init_kvstore()
        if trainer._params_to_init:
            trainer._init_params()
    return trainer


def _check_same_weights(net, hvd):
    """Every Horovod worker starts from rank 0's weights: all initialise them from one seed (or
    load one checkpoint), and one broadcast of a digest checks it.

    Horovod's ``broadcast_parameters`` (one asynchronous broadcast per parameter, 1,861 for the
    supernet) crashed a worker with a segmentation fault inside ``broadcast_`` in 1 of 100
    two-worker starts here (bench/horovod_start_loop.py); a worker crashed that way used to stay
    alive without taking part in collectives, which is how a start hangs."""
    params = [p for _, p in sorted(net._collect_params_with_prefix().items())]
    digest = sum((i + 1) * float(np.sum(p.list_data()[0].asnumpy(), dtype=np.float64))
                 for i, p in enumerate(params))
    local = nd.array([digest], dtype="float64")
    root = hvd.broadcast(local, root_rank=0, name="initial_weights_digest").asnumpy()[0]
    if root != digest:
        raise ValueError("Horovod worker %d starts from other weights than rank 0 (weight "
                         "digest %r vs %r): every worker must run the same command"
                         % (hvd.rank(), digest, root))


def _fresh(params):
    """``(index, parameter)`` of the parameters whose gradient this step computed (backward
    sets ``_fresh_grad`` on the parameter's data, the update clears it)."""
    return [(i, p) for i, p in enumerate(params)
            if p.grad_req != "null" and p.list_data()[0]._fresh_grad]


class _ScheduleStep:
    """Every parameter of a step on every device learns at the schedule's rate of that step.

    MXNet 1.9's optimizer counts updates per parameter and per device, and asks the schedule
    for the rate at the largest count seen so far (``num_update``). When a step does not update
    every parameter (a supernet trains one path), a parameter updated before any that has
    been updated at every step gets the previous step's rate on the first device and this
    step's on the others, whose updates run later: the devices' copies of the weights drift
    apart, and a checkpoint (their average) no longer continues the run it came from. Counting
    the step once, before any update, gives every parameter this step's rate everywhere; a
    fixed subnet, whose every parameter is updated at every step, learns as before.
    """

    def _update(self, ignore_stale_grad=False):
        # the per-parameter counts never exceed the number of steps: this is the step's value
        self._optimizer.num_update += 1
        super()._update(ignore_stale_grad=ignore_stale_grad)


class _Trainer(_ScheduleStep, gluon.Trainer):
    """gluon's Trainer for one path per step: one rate per step (:class:`_ScheduleStep`), and
    on several devices only this step's gradients summed.

    A supernet step trains one path: the parameters off it keep a stale gradient that the
    update skips (``ignore_stale_grad``). gluon would still sum every gradient at every step
    (16 M values for the Fashion-MNIST supernet, about four times what a path uses), doubling
    each stale one. Every device runs the same path, so the same keys are summed; a fixed
    subnet's gradients are all fresh, so nothing changes for it.
    """

    def _allreduce_grads(self):
        if not self._kvstore:
            return
        for i, param in _fresh(self._params):
            self._kvstore.pushpull(i, param.list_grad(), priority=-i)


def _horovod_trainer(hvd):
    """Horovod's DistributedTrainer as :class:`_Trainer`: one rate per step, and only this
    step's gradients reduced over the workers (every worker samples the same path, so the
    same tensors, in the same order and under the same names, are reduced on all of them)."""

    class Trainer(_ScheduleStep, hvd.DistributedTrainer):
        def _allreduce_grads(self):
            if hvd.size() == 1:
                return
            for i, param in _fresh(self._params):
                hvd.allreduce_(param.list_grad()[0], average=not self._average_in_framework,
                               name=self._prefix + str(i), priority=-i,
                               prescale_factor=1.0 / self._gradient_predivide_factor,
                               postscale_factor=self._postscale_factor)

    return Trainer


class _Metrics:
    """JSON-lines metrics file next to the text log (rank 0 only)."""

    def __init__(self, path):
        self.path = path
        if path:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)

    def reset(self):
        if self.path and os.path.exists(self.path):
            os.remove(self.path)

    def write(self, **record):
        if self.path:
            with open(self.path, "a") as f:
                f.write(json.dumps(record, default=float) + "\n")


def _split(batch, ctx):
    data, label = batch
    if len(ctx) == 1:
        return [data.as_in_context(ctx[0])], [label.as_in_context(ctx[0])]
    return (gluon.utils.split_and_load(data, ctx, even_split=False),
            gluon.utils.split_and_load(label, ctx, even_split=False))


def evaluate(net, val_data, ctx, dtype="float32", max_batches=0, hvd=None, with_loss=False):
    """Top-1 / top-5 accuracy of ``net`` on ``val_data`` (summed over Horovod workers, whose
    validation shards are disjoint); with ``with_loss`` also the mean cross-entropy."""
    counts = np.zeros(5)            # correct top-1, correct top-5, images, summed loss, bad
    for i, batch in enumerate(val_data):
        if max_batches and i >= max_batches:
            break
        datas, labels = _split(batch, ctx)
        for x, y in zip(datas, labels):
            out = net(x.astype(dtype, copy=False)).astype("float32").asnumpy()
            y = y.asnumpy().astype(np.int64)
            _, hit1, hit5 = topk_hits(out, y)
            bad = int((~np.isfinite(out).all(axis=1)).sum())
            with np.errstate(invalid="ignore"):       # said once below, not per batch
                loss = float(cross_entropy(out, y).sum())
            counts += (int(hit1.sum()), int(hit5.sum()), len(y), loss, bad)
    if hvd is not None:
        counts = hvd.allreduce(nd.array(counts), average=False, name="val_counts").asnumpy()
    if counts[2] == 0:
        raise ValueError("the validation set is empty")
    if counts[4]:
        logger.warning("%d of %d validation images gave non-finite outputs (diverged weights or "
                       "BN statistics): the loss is not a number and their top-1 is meaningless",
                       counts[4], counts[2])
    if with_loss:
        return float(counts[0] / counts[2]), float(counts[1] / counts[2]), \
            float(counts[3] / counts[2])
    return float(counts[0] / counts[2]), float(counts[1] / counts[2])


def _path_note(record):
    """Sampled path and its FLOPs / params for the text log."""
    if not record:
        return ""
    note = "\tpath=%s" % record["arch"]
    if "flops" in record:
        note += "\tflops=%.1fM params=%.3fM" % (record["flops"], record["params"])
    return note


def _fingerprint(net):
    """L2 norm of every trainable parameter (its first device's copy). Horovod workers agree
    on them up to float32 rounding: Gloo's allreduce sums in a rank-dependent order (about 1e-6
    relative after two epochs here). BN running statistics are per worker (each sees its own
    shard); rank 0's are the ones saved."""
    return {name: float(np.linalg.norm(p.list_data()[0].asnumpy().astype(np.float64)))
            for name, p in sorted(net._collect_params_with_prefix().items())
            if p.grad_req != "null"}


def _no_wd(net):
    for name, p in net.collect_params().items():
        if name.endswith(("gamma", "beta", "bias")):
            p.wd_mult = 0.0


def _one_hot_smooth(label, classes, eta):
    """Label smoothing (GluonCV): 1 - eta on the label, eta / (classes - 1) elsewhere."""
    off = eta / (classes - 1)
    return nd.one_hot(label, classes, on_value=1 - eta + off, off_value=off)


# ---------------------------------------------------------------------------------------------
def _setup_distribution(cfg):
    if cfg.horovod:
        try:
            import horovod.mxnet as hvd  # optional: horovod (the dist extra)
        except ImportError:
            raise ValueError("--horovod needs horovod built with MXNet support (make install)") \
                from None
        hvd.init()
        ctx = [mx.gpu(hvd.local_rank())] if cfg.num_gpus > 0 else [mx.cpu()]
        return hvd, ctx, hvd.rank(), hvd.size()
    # --devices, else --num-gpus GPUs, else the CPU. On several devices every batch is split
    # between them (split_and_load), all run the same sampled path, and the gradients are
    # summed by kvstore "device"; each device keeps the BN statistics of its part until the
    # end of the epoch, when the first device's are copied to the others (see train()).
    return None, cfg.contexts(), 0, 1


@dataclass
class TrainingRun:
    """What the steps of one training run share, built once by :func:`train` and passed to
    each step as one value (the trainer, loss and sampler are set by their own steps)."""

    cfg: TrainConfig
    net: object
    ctx: list
    train_data: object
    iters: int                  # training batches per epoch
    classes: int
    metrics: "_Metrics"
    rank: int = 0               # Horovod worker (0 without Horovod)
    size: int = 1               # Horovod workers
    hvd: object = None          # horovod.mxnet, or None
    val_data: object = None     # the per-epoch validation batches
    eval_split: str = "val"     # 'holdout' (a supernet with a held-out split) or 'val'
    info: object = None         # DataInfo
    trainer: object = None      # gluon (or Horovod) Trainer: :func:`_optimizer`
    loss_fn: object = None      # :func:`_loss`
    teacher: object = None      # distillation teacher, or None
    sampler: object = None      # architecture sampler of the supernet: :func:`_sampling`
    counter: object = None      # FLOPs / params of sampled paths (supernet)

    @property
    def prefix(self):
        """File prefix of checkpoints and final weights."""
        return self.cfg.file_prefix


def train(cfg):
    """Train the supernet or a fixed subnet as configured; returns a summary dict.

    The run is told in named steps: :func:`_start` (devices, seeds, metrics file, data, model),
    :func:`_resume`, :func:`_optimizer`, :func:`_loss`, :func:`_sampling`, then per epoch
    :func:`_one_epoch`, :func:`_validation` and :func:`_save_epoch`, and :func:`_final_save`.

    Parameters
    ----------
    cfg : TrainConfig or dict
    """
    if isinstance(cfg, dict):
        cfg = TrainConfig.from_dict(cfg)
    cfg.validate()
    with watchdog.watching(cfg.watchdog_seconds if cfg.horovod else 0, "this Horovod worker"), \
            interrupts.deferred():
        return _train(cfg)


def _train(cfg):
    """The steps of :func:`train` (under the Horovod watchdog)."""
    run = _start(cfg)
    start_epoch, best_top1, meta = _resume(run)
    _optimizer(run, meta)
    _loss(run)
    _sampling(run)
    summary = {"epochs": [], "best_top1": best_top1, "eval_split": run.eval_split,
               "split": run.info.split_record()}
    for epoch in range(start_epoch, cfg.num_epochs):
        stats = _one_epoch(run, epoch)
        top1 = _validation(run, epoch, stats)
        stats.update(epoch=epoch)
        summary["epochs"].append(stats)
        best_top1 = _save_epoch(run, epoch, top1, best_top1)
    summary["best_top1"] = best_top1
    _final_save(run, start_epoch, summary)
    return summary


def refuse_another_runs_files(cfg):
    """A new run (not resuming) refuses a ``--save-dir`` that already holds a run's files of
    the same prefix, which it would overwrite (ValueError). :func:`train` checks it; the
    command line checks it before it opens its log, so that a refused run adds no line to the
    log of the run it would have overwritten."""
    if cfg.auto_resume or cfg.resume_params or not os.path.isdir(cfg.save_dir):
        return
    mine = sorted(n for n in os.listdir(cfg.save_dir) if n.startswith(cfg.file_prefix + "-"))
    if mine:
        raise ValueError("--save-dir %s already holds a run of %s (%s%s): --auto-resume goes on "
                         "with it; another --save-dir starts a new run"
                         % (cfg.save_dir, cfg.file_prefix, ", ".join(mine[:3]),
                            ", ..." if len(mine) > 3 else ""))


def _start(cfg):
    """Devices and workers, seeds, the metrics file, the data and the initialised model."""
    hvd, ctx, rank, size = _setup_distribution(cfg)
    if rank == 0 and cfg.save_dir:
        refuse_another_runs_files(cfg)
        check_writable_dir(cfg.save_dir)         # a full or read-only disk: say so now
    mx.random.seed(cfg.seed + rank)
    np.random.seed(cfg.seed + rank)
    metrics_path = cfg.metrics_file
    if metrics_path and rank > 0:
        # other workers keep their own small record (sampled paths, final checksum) so that
        # runs can be checked for consistency; text logs and checkpoints stay on rank 0
        metrics_path = "%s.rank%d.jsonl" % (os.path.splitext(metrics_path)[0], rank)
    metrics = _Metrics(metrics_path)

    total_batch = cfg.batch_size * len(ctx)
    splits = cfg.split_loaders(
        batch_size=total_batch, augment=not cfg.no_augment,
        reduced_dataset_scale=cfg.reduced_dataset_scale, num_parts=size, part_index=rank,
        seed=cfg.seed, synthetic_size=cfg.synthetic_size, holdout=cfg.holdout_search)
    train_data, val_data, info = splits.train, splits.val, splits.info
    # A supernet with a held-out search split is validated on it: the validation split stays
    # unseen until the final report. Fixed subnets are always validated on the validation split.
    eval_split = "holdout" if cfg.is_supernet and splits.holdout is not None else "val"
    if eval_split == "holdout":
        val_data = splits.holdout
    if rank == 0:
        logger.info("per-epoch validation on the %s split (%d images)",
                    "held-out search" if eval_split == "holdout" else "validation",
                    info.num_holdout if eval_split == "holdout" else info.num_val)
    classes = info.num_classes
    iters = len(train_data)
    if cfg.max_batches_per_epoch:
        iters = min(iters, cfg.max_batches_per_epoch)
    logger.info("data: %s, %d classes, %d training / %d validation images, %d batches of %d "
                "per epoch on %d worker(s), device(s) %s", cfg.dataset, classes, info.num_train,
                info.num_val, iters, total_batch, size, ",".join(str(c) for c in ctx))

    net = build_model(cfg, classes)
    # every Horovod worker draws the same initial weights (checked when its trainer is made),
    # then its own random numbers
    mx.random.seed(cfg.seed)
    net.initialize(mx.init.Xavier(), ctx=ctx)
    mx.random.seed(cfg.seed + rank)
    if cfg.dtype != "float32":
        net.cast(cfg.dtype)
    return TrainingRun(cfg, net, ctx, train_data, iters, classes, metrics, rank=rank, size=size,
                       hvd=hvd, val_data=val_data, eval_split=eval_split, info=info)


def _resume(run):
    """Weights, epoch, best top-1 and random state of the checkpoint to resume from (auto or
    ``--resume-params``); returns ``(start epoch, best top-1, checkpoint meta or None)``."""
    cfg = run.cfg
    start_epoch, best_top1, meta = cfg.resume_epoch, 0.0, None
    if cfg.auto_resume:
        if run.rank == 0:
            remove_partial_files(cfg.save_dir)       # left by a run killed while writing
            remove_replaced_best(cfg.save_dir, run.prefix)
        meta = latest_checkpoint(cfg.save_dir, run.prefix)
        if meta is None:
            logger.info("auto-resume: no complete checkpoint in %s, starting fresh", cfg.save_dir)
    elif cfg.resume_params:
        if not os.path.isfile(cfg.resume_params):
            raise ValueError("--resume-params file %s does not exist" % cfg.resume_params)
        if cfg.resume_states and not os.path.isfile(cfg.resume_states):
            raise ValueError("--resume-states file %s does not exist" % cfg.resume_states)
        json_path = os.path.splitext(cfg.resume_params)[0] + ".json"
        meta = load_meta(json_path) if os.path.isfile(json_path) else {
            "params_path": cfg.resume_params, "states_path": cfg.resume_states or None,
            "epoch": cfg.resume_epoch}
    if meta is None:
        run.metrics.reset()      # a fresh run starts a fresh metrics file; a resumed one appends
    else:
        flag = "--auto-resume checkpoint" if cfg.auto_resume else "--resume-params"
        load_params_checked(run.net, meta["params_path"], flag, ctx=run.ctx,
                            hint="check --model, --use-se, --last-conv-after-pooling, "
                                 "--channels-layout and the data set's classes")
        start_epoch = int(meta.get("epoch", cfg.resume_epoch))
        best_top1 = float(meta.get("best_top1", 0.0))
        restore_rng(meta.get("rng"))
        logger.info("resumed from %s at epoch %d", meta["params_path"], start_epoch)
    return start_epoch, best_top1, meta


def _hybridize(cfg, net):
    """Cached graphs in hybrid mode: static memory and shapes for a fixed network; the
    supernet's path changes at every batch, so static memory only."""
    if cfg.mode == "hybrid":
        if cfg.is_supernet:
            net.hybridize(static_alloc=True)
        else:
            net.hybridize(static_alloc=True, static_shape=True)


def _optimizer(run, meta=None):
    """The network's graph and weight decay, and ``run.trainer`` (with the checkpoint's
    optimizer states when ``meta`` names them)."""
    cfg, net = run.cfg, run.net
    _hybridize(cfg, net)
    if cfg.no_wd:
        _no_wd(net)
    run.trainer = make_trainer(net, cfg, run.iters, run.ctx, run.hvd, run.size)
    if meta is not None and meta.get("states_path"):
        load_trainer_states(run.trainer, meta["states_path"])


def _loss(run):
    """``run.loss_fn``: cross-entropy (dense targets with label smoothing or mixup), or the
    distillation loss with ``run.teacher``."""
    cfg = run.cfg
    sparse = not (cfg.label_smoothing or cfg.mixup)
    run.loss_fn = gluon.loss.SoftmaxCrossEntropyLoss(sparse_label=sparse)
    if cfg.teacher:
        run.teacher = get_model(cfg.teacher, classes=run.classes)
        load_params_checked(run.teacher, cfg.teacher_params, "--teacher-params", ctx=run.ctx,
                            hint="is it a --teacher %s trained on this data set?" % cfg.teacher)
        run.teacher.hybridize(static_alloc=True, static_shape=True)
        temperature, hard_weight = cfg.distillation
        run.loss_fn = DistillationSoftmaxCrossEntropyLoss(temperature=temperature,
                                                         hard_weight=hard_weight,
                                                         sparse_label=sparse)


def _sampling(run):
    """The supernet's ``run.sampler`` of training paths (inside the constraint box, if any)
    and ``run.counter`` of their FLOPs / params; nothing for a fixed subnet."""
    cfg = run.cfg
    if not cfg.is_supernet:
        return
    box = None
    if cfg.train_upper_constraints:
        box = ConstraintBox.from_strings(cfg.train_upper_constraints,
                                         cfg.train_bottom_constraints)
    # FLOPs / params of every sampled path go to the log (and drive the constraints)
    run.counter = FlopsCounter.for_model(cfg, cfg.flop_param_method)
    method = cfg.train_constraint_method or ("random" if box else None)
    extra = {"bins": cfg.flops_bins} if method == "bins" and cfg.flops_bins else {}
    run.sampler = make_sampler(
        method, run.counter, box, fair=cfg.strict_fairness, seed=cfg.seed,
        epoch_start_cs=cfg.epoch_start_cs,
        cs_warm_up=cfg.cs_warm_up, ignore_first_two_cs=cfg.ignore_first_two_cs,
        use_all_channels=cfg.use_all_channels, **extra)
    if box is not None:
        logger.info("constrained sampling (%s) inside %s%s", method, box,
                    ": FLOPs bins %s" % ", ".join("%.0f" % e for e in run.sampler.edges())
                    if method == "bins" else "")


def _one_epoch(run, epoch):
    """One training epoch, reproducible on resume; the BN statistics of several devices
    become the first device's. Returns the epoch's training statistics."""
    run.train_data.set_epoch(epoch)          # the same order as an uninterrupted run
    # MXNet's generator (dropout) restarts per epoch, so that a resumed run draws what an
    # uninterrupted one draws (its state cannot be saved in a checkpoint)
    mx.random.seed(int(np.random.SeedSequence([run.cfg.seed, epoch,
                                               run.rank]).generate_state(1)[0]))
    with logging_redirect_tqdm():             # log lines above the bar, not inside it
        stats = _train_epoch(run, epoch)
    # several devices: each kept the BN statistics of its part of every batch; from here
    # on all hold the first device's, which are validated, saved and extracted
    share_bn_statistics(run.net)
    return stats


def _validation(run, epoch, stats):
    """Validate every ``val_interval`` epochs and after the last one (a supernet: recalibrated
    sampled subnets); adds to ``stats`` and returns the top-1, or None when not validated."""
    cfg = run.cfg
    if not ((epoch + 1) % max(1, cfg.val_interval) == 0 or epoch + 1 == cfg.num_epochs):
        return None
    show = cfg.progress and run.rank == 0
    if cfg.is_supernet:
        top1, top5, archs = _validate_supernet(cfg, epoch, run.net, run.sampler, run.train_data,
                                               run.val_data, run.ctx, run.hvd, show)
    else:
        with _bar(len(run.val_data), "epoch %d validation" % epoch, show) as bar:
            top1, top5, val_loss = evaluate(_inference_copy(run), _ticking(run.val_data, bar),
                                            run.ctx, cfg.dtype, hvd=run.hvd, with_loss=True)
        stats.update(val_loss=val_loss)
        archs = None
    if run.rank == 0:
        logger.info("[Epoch %d] validation: err-top1=%f err-top5=%f", epoch, 1 - top1, 1 - top5)
    run.metrics.write(kind="val", epoch=epoch, top1=top1, top5=top5, split=run.eval_split,
                      architectures=[a.to_json() for a in archs] if archs else None)
    stats.update(val_top1=top1, val_top5=top5)
    return top1


def _inference_copy(run):
    """A copy of the fixed network (weights and BN statistics) to validate, so that inference
    never touches the training weights. MXNet's MKLDNN convolution reorders its weights in
    place into its own layout when it runs in inference mode, and the next training step
    converts them back asynchronously; whether that step reads them before or after the
    conversion varies from run to run (float differences from the first validation on: two
    runs of the same command trained different networks). Measured on the digits recipe with
    MKLDNN: differing runs when validating the training network, identical ones when not
    validating or with MXNET_MKLDNN_ENABLED=0."""
    twin = build_model(run.cfg, run.classes)
    source = list(run.net.collect_params().values())
    target = list(twin.collect_params().values())
    prefix = len(run.net.prefix), len(twin.prefix)
    if [p.name[prefix[0]:] for p in source] != [p.name[prefix[1]:] for p in target]:
        raise RuntimeError("the validation copy of %s has other parameters" % run.cfg.model)
    twin.initialize(ctx=run.ctx)
    for src, dst in zip(source, target):
        dst.set_data(nd.array(src.data(run.ctx[0]).asnumpy(), dtype=src.dtype))
    nd.waitall()
    _hybridize(run.cfg, twin)
    return twin


def _save_epoch(run, epoch, top1, best_top1):
    """The epoch's checkpoints (every ``save_frequency`` epochs, and a new best), rank 0
    only; returns the best top-1 so far."""
    cfg = run.cfg
    if run.rank != 0:
        return best_top1
    is_best = top1 is not None and top1 > best_top1
    best_top1 = max(best_top1, top1) if top1 is not None else best_top1
    meta_out = {"epoch": epoch + 1, "best_top1": best_top1, "top1": top1,
                "config": cfg.to_dict(), "num_update": run.trainer.optimizer.num_update,
                "split": run.info.split_record()}
    if cfg.save_dir and cfg.save_frequency and (epoch + 1) % cfg.save_frequency == 0:
        save_checkpoint(cfg.save_dir, run.prefix, "%04d" % (epoch + 1), run.net, run.trainer,
                        meta_out)
    if cfg.save_dir and is_best:
        save_checkpoint(cfg.save_dir, run.prefix, "best", run.net, run.trainer, meta_out)
    return best_top1


def _final_save(run, start_epoch, summary):
    """The final weights with their settings JSON (and a fixed subnet's exported graph), and
    every worker's parameter fingerprint in the metrics."""
    cfg, net = run.cfg, run.net
    if hasattr(net, "sync_bn_statistics"):
        net.sync_bn_statistics()
    run.metrics.write(kind="final", rank=run.rank, param_norms=_fingerprint(net))
    if run.rank != 0 or not cfg.save_dir:
        return
    final = os.path.join(cfg.save_dir, "%s-final.params" % run.prefix)
    save_parameters(net, final)
    summary["final_params"] = final
    # The settings beside the weights: the search reads the held-out split from here.
    atomic_write_json(os.path.splitext(final)[0] + ".json",
                      {"config": cfg.to_dict(), "split": run.info.split_record(),
                       "epoch": cfg.num_epochs, "num_update": run.trainer.optimizer.num_update},
                      indent=1)
    if not cfg.is_supernet and cfg.mode == "hybrid":
        if start_epoch >= cfg.num_epochs:
            # resumed after the last epoch: the graph has not been built by a forward pass
            size = cfg.input_size
            net(nd.zeros((1, 3, size, size), ctx=run.ctx[0], dtype=cfg.dtype))
        try:
            prefix = os.path.join(cfg.save_dir, run.prefix)
            net.export(prefix)
            summary["exported"] = {"symbol": prefix + "-symbol.json",
                                   "params": prefix + "-0000.params",
                                   "deploy": _write_deploy_meta(run)}
        except OSError as err:
            raise CheckpointError("cannot export %s to %s: %s"
                                  % (run.prefix, cfg.save_dir, err.strerror or err)) from None


def _write_deploy_meta(run):
    """``<prefix>-deploy.json`` beside the exported graph: the validation preprocessing of the
    data it was trained on and its class names, so that export and prediction need no flag."""
    cfg = run.cfg
    arch = getattr(run.net, "architecture", None)
    meta = meta_for_data(cfg.dataset, run.info, cfg.input_size, cfg.crop_ratio,
                         model=cfg.model, config=run.net.config if hasattr(run.net, "config")
                         else cfg.model_settings(),
                         architecture=arch.to_json() if arch is not None else None)
    path = write_meta(os.path.join(cfg.save_dir, run.prefix), meta)
    logger.info("exported %s-symbol.json / -0000.params with its preprocessing %s",
                os.path.join(cfg.save_dir, run.prefix), path)
    return path


def _targets(cfg, labels, classes, mixed):
    """The loss's targets: the labels, or dense (smoothed / mixed) ones. ``mixed`` is the
    mixup weight of the batch, or None."""
    eta = 0.1 if cfg.label_smoothing else 0.0
    if mixed is not None:
        return [mixed * _one_hot_smooth(y, classes, eta)
                + (1 - mixed) * _one_hot_smooth(y[::-1], classes, eta) for y in labels]
    if cfg.label_smoothing or cfg.mixup:
        # the loss takes dense targets whenever either flag is set (also in the last
        # --mixup-off-epoch epochs, which are not mixed)
        return [_one_hot_smooth(y, classes, eta) for y in labels]
    return labels


def _forward_paths(run, paths, datas, targets, soft):
    """Forward every path (one, or the four of a strictly fair step) on every device's part of
    the batch under one recording. Returns the outputs per path and the losses, each divided
    by the number of paths: one update from the paths' mean gradient (exactly the sum of
    separate backward passes, checked in the tests)."""
    outs, losses = [], []
    with autograd.record():
        for arch in paths:
            if arch is not None:
                run.net.set_architecture(arch)
            path_outs = [run.net(x) for x in datas]
            outs.append(path_outs)
            for k, (o, t) in enumerate(zip(path_outs, targets)):
                o = o.astype("float32", copy=False)
                loss = run.loss_fn(o, t, soft[k]) if run.teacher is not None else \
                    run.loss_fn(o, t)
                losses.append(loss / len(paths) if len(paths) > 1 else loss)
    return outs, losses


def _train_epoch(run, epoch):
    """One pass over ``run.iters`` training batches (a sampled path per batch for the
    supernet); returns ``{'train_accuracy', 'loss', 'speed'}``."""
    cfg, trainer, metrics = run.cfg, run.trainer, run.metrics
    prefetch = Prefetcher(run.sampler.stream(epoch)) if run.sampler is not None else None
    top1 = mx.metric.Accuracy()
    loss_sum, seen, tic = 0.0, 0, time.time()
    use_mixup = cfg.mixup and epoch < cfg.num_epochs - cfg.mixup_off_epoch
    record = None
    bar = tqdm(total=run.iters, desc="epoch %d" % epoch, unit="batch", leave=False,
               disable=not (cfg.progress and run.rank == 0))
    try:
        for i, batch in enumerate(run.train_data):
            if i >= run.iters:
                break
            paths = (None,)
            if prefetch is not None:
                paths = prefetch.next()
                paths = paths if isinstance(paths, tuple) else (paths,)   # fair: four paths
                for k, arch in enumerate(paths):
                    record = {"kind": "sample", "epoch": epoch, "batch": i,
                              "arch": arch.to_json()}
                    if len(paths) > 1:
                        record["path"] = k
                    if run.counter is not None:
                        f, p = run.counter.one(arch)
                        record.update(flops=f, params=p)
                    metrics.write(**record)
            datas, labels = _split(batch, run.ctx)
            mixed = None
            if use_mixup:
                mixed = np.random.beta(cfg.mixup_beta, cfg.mixup_beta)
                datas = [mixed * x + (1 - mixed) * x[::-1] for x in datas]
            targets = _targets(cfg, labels, run.classes, mixed)
            datas = [x.astype(cfg.dtype, copy=False) for x in datas]
            soft = None
            if run.teacher is not None:
                soft = [nd.softmax(run.teacher(x.astype("float32", copy=False))
                                   / cfg.distillation[0])
                        for x in datas]
            outs, losses = _forward_paths(run, paths, datas, targets, soft)
            autograd.backward(losses)
            trainer.step(sum(x.shape[0] for x in datas),
                         ignore_stale_grad=run.sampler is not None)
            for path_outs in outs:
                top1.update(labels, [o.astype("float32", copy=False) for o in path_outs])
            loss_sum += sum(l.sum().asscalar() for l in losses)
            seen += sum(x.shape[0] for x in datas)
            lr = trainer.learning_rate
            bar.set_postfix(loss="%.3f" % (loss_sum / seen), acc="%.3f" % top1.get()[1],
                            lr="%.4f" % lr, refresh=False)
            bar.update(1)
            watchdog.kick()
            interrupts.check()          # a Ctrl-C stops here, between batches
            if cfg.log_interval and (i + 1) % cfg.log_interval == 0:
                metrics.write(kind="step", epoch=epoch, batch=i, loss=loss_sum / seen, lr=lr,
                              accuracy=top1.get()[1], seconds=time.time() - tic)
                if run.rank == 0:
                    logger.info("Epoch[%d] Batch [%d]\tSpeed: %f samples/sec\taccuracy=%f\t"
                                "loss=%f\tlr=%f%s", epoch, i + 1, seen / (time.time() - tic),
                                top1.get()[1], loss_sum / seen, lr, _path_note(record))
    finally:
        bar.close()
        if prefetch is not None:
            prefetch.close()
    elapsed = time.time() - tic
    speed = seen / elapsed if elapsed > 0 else float("nan")
    acc = top1.get()[1]
    if not math.isfinite(loss_sum):
        raise FloatingPointError("training loss became %s in epoch %d" % (loss_sum, epoch))
    if run.rank == 0:
        logger.info("[Epoch %d] training: accuracy=%f loss=%f", epoch, acc, loss_sum / max(seen, 1))
        logger.info("[Epoch %d] speed: %d samples/sec\ttime cost: %f", epoch, speed, elapsed)
    metrics.write(kind="train", epoch=epoch, accuracy=acc, loss=loss_sum / max(seen, 1),
                  speed=speed, time=elapsed, lr=trainer.learning_rate)
    return {"train_accuracy": acc, "loss": loss_sum / max(seen, 1), "speed": speed}


def _bar(total, desc, show):
    """A tqdm bar over batches (a context manager; disabled: a no-op)."""
    return tqdm(total=total, desc=desc, unit="batch", leave=False, disable=not show)


def _ticking(batches, bar):
    """``batches``, advancing ``bar`` by one per batch (progress for the watchdog too)."""
    for batch in batches:
        yield batch
        bar.update(1)
        watchdog.kick()
        interrupts.check()


def _validate_supernet(cfg, epoch, net, sampler, train_data, val_data, ctx, hvd=None,
                       show=False):
    """Mean top-1 / top-5 of ``cfg.val_subnets`` sampled subnets, each BN-recalibrated.

    Shows one bar over the recalibration and validation batches of all subnets, and logs a
    line per subnet (this takes about as long as a training epoch on digits).
    """
    rng = np.random.default_rng([cfg.seed, epoch, 7919])
    low, high = sampler.channel_range(epoch)
    results, archs = [], []
    n = max(1, cfg.val_subnets)
    calib_batches = min(len(train_data), math.ceil(cfg.update_bn_images
                                                   / getattr(train_data, "batch_size", 1)))
    with _bar(n * (calib_batches + len(val_data)),
              "epoch %d validation (%d subnets)" % (epoch, n), show) as bar, \
            logging_redirect_tqdm():             # log lines above the bar, not inside it
        for k in range(n):
            tic = time.time()
            arch = Architecture.sample(rng, min_channel_index=low, max_channel_index=high)
            subnet = net.get_subnet(arch)

            def images():
                train_data.set_epoch(0)          # the same calibration images every time
                taken = 0
                for data, _ in _ticking(train_data, bar):
                    yield data
                    taken += data.shape[0]
                    if taken >= cfg.update_bn_images:    # decode no batch it will not use
                        return
            recalibrate_bn(subnet, images(), ctx=ctx, max_images=cfg.update_bn_images)
            subnet.hybridize(static_alloc=True)
            results.append(evaluate(subnet, _ticking(val_data, bar), ctx, hvd=hvd))
            archs.append(arch)
            logger.info("[Epoch %d] validation subnet %d/%d: recalibrated top-1 %.4f (%.0f s)",
                        epoch, k + 1, n, results[-1][0], time.time() - tic)
    top1 = float(np.mean([r[0] for r in results]))
    top5 = float(np.mean([r[1] for r in results]))
    logger.info("[Epoch %d] supernet: %d recalibrated subnet(s), top-1 %s", epoch, len(results),
                ", ".join("%.4f" % r[0] for r in results))
    return top1, top5, archs
