"""Supernet / subnet training: trainer loop, checkpoints, architecture samplers."""
from .config import TrainConfig
from .trainer import build_model, evaluate, make_lr_scheduler, train

__all__ = ["TrainConfig", "train", "build_model", "evaluate", "make_lr_scheduler"]
