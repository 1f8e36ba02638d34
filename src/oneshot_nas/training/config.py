"""The trainer's configuration: one dataclass, made of the shared pieces of
:mod:`oneshot_nas.config` and the training's own fields, filled from flags by the CLI or from
code."""
import os
from dataclasses import asdict, dataclass

from ..config import DataConfig, DeviceConfig, ModelConfig, checked_fields
from ..machine import check_num_gpus
from ..models import PRESETS, list_models
from ..search_space import NUM_BLOCKS, Architecture
from .samplers import ConstraintBox

__all__ = ["TrainConfig", "DEFAULT_MIXUP_ALPHA", "DEFAULT_TEMPERATURE", "DEFAULT_HARD_WEIGHT"]

# Values of the modifier flags when their main flag (--mixup, --teacher) is given without them;
# the config keeps None so that a modifier given without its main flag can be refused.
DEFAULT_MIXUP_ALPHA = 0.2
DEFAULT_TEMPERATURE = 20.0
DEFAULT_HARD_WEIGHT = 0.5


@dataclass
class TrainConfig(DataConfig, DeviceConfig, ModelConfig):
    """All settings of :func:`oneshot_nas.training.train` (names follow the CLI flags).

    The data, device and model fields come from the shared pieces of :mod:`oneshot_nas.config`.
    """

    # data
    batch_size: int = 32                 # per device
    reduced_dataset_scale: int = 1
    no_augment: bool = False
    synthetic_size: int = None           # dataset=synthetic: training images
    holdout_search: int = 0              # training images held out for the search (data.splits)
    # model
    model: str = "ShuffleNas"
    block_choices: str = None
    channel_choices: str = None
    mode: str = "hybrid"
    dtype: str = "float32"
    # supernet
    use_all_blocks: bool = False
    strict_fairness: bool = False        # every step: four paths, every block type once
    affine_free_bn: bool = False         # choice-block BN without gamma / beta (official SPOS)
    use_all_channels: bool = False
    epoch_start_cs: int = 0
    cs_warm_up: bool = False
    ignore_first_two_cs: bool = False
    train_upper_constraints: str = None
    train_bottom_constraints: str = None
    train_constraint_method: str = None
    flops_bins: int = None               # bins of --train-constraint-method bins (None: 7)
    flop_param_method: str = "lookup_table"
    update_bn_images: int = 20000
    val_subnets: int = 1
    val_interval: int = 1                # validate every N epochs (and after the last one)
    # optimisation
    num_epochs: int = 120
    lr: float = 0.1
    optimizer: str = "nag"
    lr_mode: str = "cosine"
    lr_decay: float = 0.1
    lr_decay_period: int = 0
    lr_decay_epoch: str = "40,60"
    warmup_lr: float = 0.0
    warmup_epochs: int = 0
    momentum: float = 0.9
    wd: float = 1e-4
    no_wd: bool = False
    label_smoothing: bool = False
    mixup: bool = False
    mixup_alpha: float = None           # DEFAULT_MIXUP_ALPHA with --mixup
    mixup_off_epoch: int = 0
    teacher: str = None
    teacher_params: str = None
    temperature: float = None           # DEFAULT_TEMPERATURE with --teacher
    hard_weight: float = None           # DEFAULT_HARD_WEIGHT with --teacher
    # checkpoints, logs, distribution
    save_frequency: int = 10
    save_dir: str = "params"
    resume_epoch: int = 0
    resume_params: str = ""
    resume_states: str = ""
    auto_resume: bool = False
    log_interval: int = 50
    logging_file: str = "train_imagenet.log"
    metrics_file: str = None
    seed: int = 0
    horovod: bool = False
    watchdog_seconds: int = 600        # --horovod: a worker without progress this long exits
    progress: bool = True
    max_batches_per_epoch: int = 0     # 0 = the whole epoch (tests / smoke runs use a cap)

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, values):
        """Inverse of :meth:`to_dict` (also the ``config`` of a supernet's JSON); unknown
        fields are refused in one line."""
        return cls(**checked_fields(cls, values, "training setting"))

    @property
    def is_supernet(self):
        return self.model == "ShuffleNas"

    @property
    def file_prefix(self):
        """File prefix of the run's checkpoints, final weights and exported graph."""
        return "ShuffleNas-supernet" if self.is_supernet else self.model

    @property
    def mixup_beta(self):
        """The Beta distribution's parameter of mixup (``--mixup-alpha`` or its default)."""
        return DEFAULT_MIXUP_ALPHA if self.mixup_alpha is None else self.mixup_alpha

    @property
    def distillation(self):
        """``(temperature, hard_weight)`` of the distillation loss (flags or defaults)."""
        return (DEFAULT_TEMPERATURE if self.temperature is None else self.temperature,
                DEFAULT_HARD_WEIGHT if self.hard_weight is None else self.hard_weight)

    def validate(self):
        """Refuse settings that would be ignored or cannot run, before anything is built.

        Raises
        ------
        ValueError
            One line naming the flag (``--use-se``, ``--dtype``, ...) and what would be right.
        """
        self._check_model()
        self._check_sampling()
        if self.batch_size < 1:
            raise ValueError("--batch-size must be >= 1, got %d" % self.batch_size)
        if self.num_epochs < 1:
            raise ValueError("--num-epochs must be >= 1, got %d (0 would save untrained "
                             "weights as the result)" % self.num_epochs)
        if self.watchdog_seconds < 0:
            raise ValueError("--watchdog-seconds must be >= 0 (0: no watchdog), got %d"
                             % self.watchdog_seconds)
        self._check_devices()
        self._check_losses()
        if self.resume_states and not self.resume_params:
            raise ValueError("--resume-states needs --resume-params")
        return self

    def _check_model(self):
        """The model and its fixed choices."""
        if self.model not in list_models():
            raise ValueError("unknown --model %r; known models: %s"
                             % (self.model, ", ".join(list_models())))
        if self.block_choices or self.channel_choices:
            # the values first, so that a typo is reported as such whatever the model
            Architecture.parse(self.block_choices or (0,) * NUM_BLOCKS, self.channel_choices)
            if self.model in PRESETS:
                raise ValueError("--block-choices / --channel-choices cannot change the preset "
                                 "--model %s; use --model ShuffleNas_fixArch with them"
                                 % self.model)
            if self.is_supernet:
                raise ValueError("--block-choices / --channel-choices fix one architecture, "
                                 "but --model ShuffleNas trains the supernet on sampled paths; "
                                 "use --model ShuffleNas_fixArch with them")
        if self.model == "ShuffleNas_fixArch" and not self.block_choices:
            raise ValueError("--model ShuffleNas_fixArch needs --block-choices (and "
                             "--channel-choices, default scale 1.0)")

    def _check_sampling(self):
        """Supernet-only flags on a fixed subnet, and the constraint box of sampled paths."""
        if not self.is_supernet:
            supernet_only = [flag for flag, on in (
                ("--use-all-blocks", self.use_all_blocks),
                ("--strict-fairness", self.strict_fairness),
                ("--use-all-channels", self.use_all_channels),
                ("--epoch-start-cs", self.epoch_start_cs != 0),
                ("--cs-warm-up", self.cs_warm_up),
                ("--ignore-first-two-cs", self.ignore_first_two_cs),
                ("--train-upper-constraints", self.train_upper_constraints),
                ("--train-bottom-constraints", self.train_bottom_constraints),
                ("--train-constraint-method", self.train_constraint_method)) if on]
            if supernet_only:
                raise ValueError("%s only apply to the supernet (--model ShuffleNas), not to "
                                 "--model %s" % (" / ".join(supernet_only), self.model))
        if self.train_upper_constraints:
            ConstraintBox.from_strings(self.train_upper_constraints,
                                       self.train_bottom_constraints)
        elif self.train_bottom_constraints:
            raise ValueError("--train-bottom-constraints needs --train-upper-constraints (the "
                             "box's upper corner), e.g. flops-330-params-5.0")
        elif self.train_constraint_method:
            raise ValueError("--train-constraint-method %s needs --train-upper-constraints, "
                             "e.g. flops-330-params-5.0" % self.train_constraint_method)
        if self.strict_fairness and (self.train_upper_constraints or self.use_all_blocks):
            raise ValueError("--strict-fairness trains each layer's four block types on "
                             "separate paths at every step; it cannot be combined with %s"
                             % ("--use-all-blocks" if self.use_all_blocks else
                                "--train-upper-constraints (no box holds all four paths)"))
        if self.flops_bins is not None:
            if self.train_constraint_method != "bins":
                raise ValueError("--flops-bins %s needs --train-constraint-method bins"
                                 % self.flops_bins)
            if self.flops_bins < 1:
                raise ValueError("--flops-bins must be >= 1, got %d" % self.flops_bins)

    def _check_devices(self):
        """Devices, Horovod and the precision they allow."""
        if self.horovod and self.devices:
            raise ValueError("--devices does not apply with --horovod: each Horovod worker uses "
                             "gpu(local rank) with --num-gpus 1, else the CPU")
        if self.devices:
            contexts = self.contexts()
            if self.dtype == "float16" and any(c.device_type != "gpu" for c in contexts):
                raise ValueError("--dtype float16 needs GPU devices (--devices %s has a CPU "
                                 "one): MXNet has no float16 convolution on the CPU; use "
                                 "--dtype float32" % self.devices)
        else:
            check_num_gpus(self.num_gpus)
            if self.dtype == "float16" and self.num_gpus == 0:
                raise ValueError("--dtype float16 needs a GPU (--num-gpus >= 1): MXNet has no "
                                 "float16 convolution on the CPU; use --dtype float32")

    def _check_losses(self):
        """Mixup and distillation settings that need their switch."""
        if self.mixup_alpha is not None and not self.mixup:
            raise ValueError("--mixup-alpha %g needs --mixup (it shapes the mixing weights)"
                             % self.mixup_alpha)
        if self.mixup_off_epoch and not self.mixup:
            raise ValueError("--mixup-off-epoch %d needs --mixup" % self.mixup_off_epoch)
        for flag, value in (("--temperature", self.temperature),
                            ("--hard-weight", self.hard_weight)):
            if value is not None and not self.teacher:
                raise ValueError("%s %g needs --teacher (it shapes the distillation loss)"
                                 % (flag, value))
        if self.teacher_params and not self.teacher:
            raise ValueError("--teacher-params needs --teacher (the registered model name of "
                             "the teacher)")
        if self.teacher and not (self.teacher_params and os.path.isfile(self.teacher_params)):
            raise ValueError("--teacher %s needs --teacher-params pointing to an existing file "
                             "(nothing is downloaded), got %r" % (self.teacher, self.teacher_params))
