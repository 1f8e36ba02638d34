"""Training figures from the JSON-lines metrics file: learning curves and path coverage."""
import json
import logging

import numpy as np

from ..plotting import label_axes, pyplot, save_figure

__all__ = ["read_metrics", "plot_curves", "plot_coverage"]

logger = logging.getLogger(__name__)


def read_metrics(path):
    """Records of a metrics file; ValueError naming the file (and line) if it is missing or
    is not the trainer's JSON-lines format."""
    rows, n = [], 0
    try:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    row = json.loads(line)
                    if not isinstance(row, dict):
                        raise ValueError
                    rows.append(row)
    except OSError as err:
        raise ValueError("metrics file %s cannot be read: %s" % (path, err.strerror)) from None
    except UnicodeDecodeError:
        raise ValueError("metrics file %s is not text (is it the .jsonl file written by "
                         "train_imagenet.py?)" % path) from None
    except ValueError:          # not JSON, or JSON but not an object
        raise ValueError("metrics file %s: line %d is not a JSON object (is it the .jsonl "
                         "file written by train_imagenet.py?)" % (path, n)) from None
    return rows


def plot_curves(rows, path, title="training"):
    """Training / validation accuracy and training loss per epoch -> PNG."""
    plt = pyplot()
    train = {r["epoch"]: r for r in rows if r.get("kind") == "train"}
    val = {r["epoch"]: r for r in rows if r.get("kind") == "val"}
    if not train:
        raise ValueError("no training records to plot")
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ep = sorted(train)
    ax1.plot(ep, [100 * train[e]["accuracy"] for e in ep], "o-", label="training (batches)")
    if val:
        ev = sorted(val)
        ax1.plot(ev, [100 * val[e]["top1"] for e in ev], "s-", label="validation top-1")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("accuracy (%)")
    ax1.set_ylim(0, 100)
    ax1.grid(alpha=0.3)
    ax1.legend()
    ax2.plot(ep, [train[e]["loss"] for e in ep], "o-", color="tab:red")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("training loss")
    ax2.grid(alpha=0.3)
    fig.suptitle(title)
    return save_figure(fig, path)


def plot_coverage(rows, path, box=None, title="sampled paths"):
    """(FLOPs, params) of every sampled training path, with the constraint box -> PNG."""
    plt = pyplot()
    samples = [r for r in rows if r.get("kind") == "sample" and "flops" in r]
    if not samples:
        raise ValueError("no sampled paths with FLOPs in the metrics (train with constraints "
                         "to record them)")
    flops = np.array([r["flops"] for r in samples])
    params = np.array([r["params"] for r in samples])
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.scatter(flops, params, s=6, alpha=0.4, label="%d sampled paths" % len(samples))
    if box is not None:
        ax.add_patch(plt.Rectangle((box.flops_min, box.params_min), box.flops_max - box.flops_min,
                                   box.params_max - box.params_min, fill=False, color="r",
                                   lw=1.5, label="constraint box"))
    label_axes(ax, "MFLOPs (224 px, 1000 classes)", "M params", title)
    return save_figure(fig, path)
