"""Plot learning curves (and sampled-path coverage) from a trainer's metrics file.

``python -m oneshot_nas.cli.plot_training logs/shufflenas_supernet.jsonl --output-dir docs``
"""
import os
import sys

from ..training.plots import plot_coverage, plot_curves, read_metrics
from ..training.samplers import ConstraintBox
from .common import command, new_parser, start


def build_parser():
    p = new_parser(__doc__.splitlines()[0])
    p.add_argument("metrics", help="JSON-lines metrics file written by train_imagenet.py")
    p.add_argument("--output-dir", default=".", help="where to write the PNGs")
    p.add_argument("--title", default=None, help="figure title (default: the log's name)")
    p.add_argument("--train-upper-constraints", default=None,
                   help="draw this box on the coverage plot, e.g. flops-330-params-5.0")
    p.add_argument("--train-bottom-constraints", default=None,
                   help="draw this constraint box's lower corner, e.g. flops-190-params-2.8")
    return p


@command("plot_training")
def main(argv=None):
    args = start(build_parser(), argv)
    rows = read_metrics(args.metrics)
    if not any(r.get("kind") == "train" for r in rows):
        raise ValueError("metrics file %s has no training records (kind 'train') to plot"
                         % args.metrics)
    os.makedirs(args.output_dir, exist_ok=True)
    stem = os.path.splitext(os.path.basename(args.metrics))[0]
    title = args.title or stem
    print(plot_curves(rows, os.path.join(args.output_dir, stem + "_curves.png"), title))
    if any(r.get("kind") == "sample" and "flops" in r for r in rows):
        box = (ConstraintBox.from_strings(args.train_upper_constraints,
                                          args.train_bottom_constraints)
               if args.train_upper_constraints else None)
        print(plot_coverage(rows, os.path.join(args.output_dir, stem + "_coverage.png"),
                            box, title))
    return 0

if __name__ == "__main__":
    sys.exit(main())
