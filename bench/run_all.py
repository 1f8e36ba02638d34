"""Run every benchmark in one process tree and rewrite docs/benchmarks.md (``make bench``).

Each script writes its own markdown section; this assembles them under one header with the
machine description, so every ratio in the file was measured in the same run as its baseline.
"""
import argparse
import datetime
import os
import subprocess
import sys
import tempfile

from oneshot_nas.machine import describe_machine

HERE = os.path.dirname(os.path.abspath(__file__))
BENCHES = [
    ("bench_models.py", ["--repeats", "7", "--warmup", "2"]),
    ("bench_training.py", []),
    ("bench_depthwise.py", []),
    ("bench_profiling.py", []),
    ("bench_data.py", []),
    ("bench_search.py", []),
    ("bench_latency.py", []),
    ("bench_deploy.py", []),
    ("bench_onnx.py", []),
]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--output", default="docs/benchmarks.md")
    p.add_argument("--only", nargs="*", help="run only these scripts")
    args = p.parse_args(argv)
    sections = []
    with tempfile.TemporaryDirectory() as tmp:
        for script, extra in BENCHES:
            if args.only and script not in args.only:
                continue
            path = os.path.join(HERE, script)
            if not os.path.exists(path):
                print("skipping %s (not present)" % script, file=sys.stderr)
                continue
            out = os.path.join(tmp, script + ".md")
            print("== %s" % script, file=sys.stderr, flush=True)
            subprocess.run([sys.executable, path, "--output", out] + extra, check=True)
            with open(out) as f:
                text = f.read().strip()
            if text.startswith("# "):          # a script's own title becomes a section
                text = "#" + text
            sections.append(text)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as f:
        f.write("# Benchmarks\n\nProduced by `make bench` (`python bench/run_all.py`) on %s, "
                "%s. Every ratio compares figures measured in the same run; figures of the "
                "earlier MXNet port (docs/design.md, section 7) are for orientation only.\n\n"
                % (describe_machine(), datetime.date.today().isoformat()))
        f.write("\n\n".join(sections) + "\n")
    print("wrote %s" % args.output)


if __name__ == "__main__":
    main()
