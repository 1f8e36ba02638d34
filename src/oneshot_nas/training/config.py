"""The trainer's configuration: one dataclass, filled from flags by the CLI or from code."""
from dataclasses import asdict, dataclass, fields

__all__ = ["TrainConfig"]


@dataclass
class TrainConfig:
    """All settings of :func:`oneshot_nas.training.train` (names follow the CLI flags)."""

    # data
    dataset: str = "imagenet"            # imagenet | digits | synthetic
    data_dir: str = None
    use_rec: bool = False
    rec_train: str = None
    rec_train_idx: str = None
    rec_val: str = None
    rec_val_idx: str = None
    batch_size: int = 32                 # per device
    num_gpus: int = 0
    num_workers: int = 4
    input_size: int = 224
    crop_ratio: float = 0.875
    reduced_dataset_scale: int = 1
    no_augment: bool = False
    synthetic_size: int = None           # dataset=synthetic: training images
    holdout_search: int = 0              # training images held out for the search (data.splits)
    # model
    model: str = "ShuffleNas"
    block_choices: str = None
    channel_choices: str = None
    channels_layout: str = "OneShot"
    use_se: bool = False
    last_conv_after_pooling: bool = False
    mode: str = "hybrid"
    dtype: str = "float32"
    # supernet
    use_all_blocks: bool = False
    use_all_channels: bool = False
    epoch_start_cs: int = 0
    cs_warm_up: bool = False
    ignore_first_two_cs: bool = False
    train_upper_constraints: str = None
    train_bottom_constraints: str = None
    train_constraint_method: str = None
    flop_param_method: str = "lookup_table"
    update_bn_images: int = 20000
    val_subnets: int = 1
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
    mixup_alpha: float = 0.2
    mixup_off_epoch: int = 0
    teacher: str = None
    teacher_params: str = None
    temperature: float = 20.0
    hard_weight: float = 0.5
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
    progress: bool = True
    max_batches_per_epoch: int = 0     # 0 = the whole epoch (tests / smoke runs use a cap)

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, values):
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError("unknown training setting(s): %s" % ", ".join(unknown))
        return cls(**values)

    @property
    def is_supernet(self):
        return self.model == "ShuffleNas"
