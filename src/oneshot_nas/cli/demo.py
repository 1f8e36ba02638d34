"""The whole NAS pipeline on the bundled digits data, on the CPU (``make demo``).

Each stage runs the user-facing command of the README in a subprocess, so the demo proves
that those commands work as written:

1. ``sh scripts/train_supernet.sh`` (DATASET=digits) trains the supernet, holding 360
   training images out for the search (its curves: ``plot_training``);
2. ``python search_supernet.py`` runs the genetic search under a FLOPs limit on the held-out
   images, and a random search with the same number of evaluated candidates;
   ``python -m oneshot_nas.cli.compare_searches`` plots best fitness per evaluated candidate;
3. ``sh scripts/train_fixArch+.sh`` trains the best subnet from scratch (full digits recipe);
4. ``python calculate_flops.py`` counts its exported symbol and prints its MicroNet profile;
5. ``sh scripts/quantize_int8.sh`` quantizes it to int8 and evaluates fp32 against int8;
6. ``python -m oneshot_nas.cli.export_onnx`` exports its float32 graph to ONNX and checks it
   against MXNet with onnxruntime (batch 1 and 7, 32 and 64 px).

Everything goes into one run folder (a new ``runs/demo-<date>-<time>`` unless ``DEMO_DIR``
names one); ``make demo-record`` writes the logs and figures committed in ``logs/`` and
``docs/demo/`` instead. It ends with one summary table and the paths of the plots.
``DEMO_FAST=1`` shortens every stage (the CI smoke run, about 5 minutes); ``SEED`` fixes every
random choice. The whole full run must stay under 15 minutes on the 2-core machine.

The demo makes no ranking claim: on the digits every architecture trained properly reaches
98-99.5 % (one validation image is 0.28 points), so neither a Kendall tau against stand-alone
runs nor a "winner beats random" verdict can be measured there within minutes. The ranking
evidence is the Fashion-MNIST ground-truth table and ``rank_check --benchmark``
(docs/ranking.md); a Fashion-MNIST supernet worth scoring takes longer than the demo's budget.
"""
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import time

from .common import new_parser

__all__ = ["main", "RANKING_NOTE"]

RANKING_NOTE = ("not measured on digits (every architecture reaches 98-99.5 %); Fashion-MNIST "
                "table + rank_check --benchmark, docs/ranking.md")

def _settled(text):
    """Console output as it finally stands: of the carriage-return updates of a progress bar
    only the last state of each line is kept."""
    lines = []
    for line in text.split("\n"):
        parts = [p for p in line.split("\r") if p.strip()]
        if parts:
            lines.append(parts[-1].rstrip())
    return "\n".join(lines) + "\n"


class _Stage:
    def __init__(self, workdir, log_dir, env):
        self.workdir, self.log_dir, self.env = workdir, log_dir, env
        self.times = {}

    def run(self, name, cmd, extra_env=None):
        """Run one stage, echoing its output (progress bars and log lines) as it comes; the
        settled output goes to ``<log_dir>/demo_<name>.log`` and is returned."""
        env = dict(self.env, PYTHONUNBUFFERED="1", **(extra_env or {}))
        shown = " ".join("%s=%s" % kv for kv in (extra_env or {}).items())
        print("\n=== %s: %s %s" % (name, shown, " ".join(shlex.quote(c) for c in cmd)),
              flush=True)
        tic = time.time()
        proc = subprocess.Popen(cmd, cwd=self.workdir, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        chunks = []
        out = getattr(sys.stdout, "buffer", None)
        while True:
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            chunks.append(chunk)
            if out is not None:
                out.write(chunk)
                out.flush()
            else:
                sys.stdout.write(chunk.decode("utf-8", "replace"))
        proc.wait()
        proc.stdout.close()
        self.times[name] = time.time() - tic
        text = _settled(b"".join(chunks).decode("utf-8", "replace"))
        log = os.path.join(self.log_dir, "demo_%s.log" % name)
        with open(log, "w") as f:
            f.write(text)
        if proc.returncode != 0:
            raise SystemExit("demo stage %s failed (exit %d); full output in %s"
                             % (name, proc.returncode, log))
        print("    [%s done in %.0f s]" % (name, self.times[name]), flush=True)
        return text


def _last_json(text):
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            return json.loads(line)
    raise SystemExit("expected a JSON line in the output")


def build_parser():
    p = new_parser(__doc__.splitlines()[0])
    p.add_argument("--fast", action="store_true", default=os.environ.get("DEMO_FAST") == "1",
                   help="short smoke run (also DEMO_FAST=1)")
    p.add_argument("--seed", type=int, default=int(os.environ.get("SEED", "0")),
                   help="seed of every random choice (also SEED=n)")
    p.add_argument("--work-dir", default=os.environ.get("DEMO_DIR"),
                   help="the run's folder: checkpoints, search results, and the logs and "
                        "figures unless --log-dir / --plot-dir say otherwise (also DEMO_DIR; "
                        "default: a new runs/demo-<date>-<time>)")
    p.add_argument("--log-dir", default=os.environ.get("LOG_DIR"),
                   help="logs and the summary (also LOG_DIR; default: WORK_DIR/logs; "
                        "make demo-record: the committed logs/)")
    p.add_argument("--plot-dir", default=os.environ.get("PLOT_DIR"),
                   help="figures (also PLOT_DIR; default: WORK_DIR/plots; make demo-record: "
                        "the committed docs/demo/)")
    p.add_argument("--max-flops", type=float, default=300.0,
                   help="FLOPs limit of the search (MFLOPs at 224 px, 1000 classes)")
    return p


def _fill_dirs(args):
    """A new run folder under runs/ unless one is given; logs and plots inside it unless
    given too, so that a demo never rewrites another run's (or the committed) files."""
    if not args.work_dir:
        args.work_dir = os.path.join("runs", time.strftime("demo-%Y%m%d-%H%M%S"))
    args.log_dir = args.log_dir or os.path.join(args.work_dir, "logs")
    args.plot_dir = args.plot_dir or os.path.join(args.work_dir, "plots")
    return args


class _Run:
    """What every stage of the demo shares: flags, paths, the stage runner, the seed."""

    def __init__(self, args):
        self.args = _fill_dirs(args)
        self.root = os.getcwd()
        for d in (args.work_dir, args.log_dir, args.plot_dir):
            os.makedirs(d, exist_ok=True)
        env = dict(os.environ, PYTHON=sys.executable, DATASET="digits", LOG_DIR=args.log_dir)
        self.stage = _Stage(self.root, args.log_dir, env)
        self.py = sys.executable
        self.fast = args.fast
        self.seed = str(args.seed)
        self.t0 = time.time()

    def path(self, *parts):
        return os.path.join(self.args.work_dir, *parts)


def _train_supernet(run):
    """1. The supernet; returns its final weights."""
    super_dir = run.path("supernet")
    # 60 epochs of 17 steps: ~1,000 steps, where the probe curves leave chance (about 77 %
    # held-out top-1 at full width, docs/supernet_digits.md); the script's default is 125
    super_epochs = "2" if run.fast else os.environ.get("SUPERNET_EPOCHS", "60")
    super_env = {"SAVE_DIR": super_dir, "SAVE_FREQUENCY": "100", "NUM_EPOCHS": super_epochs,
                 "EPOCH_START_CS": "1" if run.fast else "40", "VAL_INTERVAL": "20"}
    super_extra = ["--seed", run.seed, "--val-subnets", "1" if run.fast else "2"]
    if run.fast:
        super_extra += ["--update-bn-images", "128", "--max-batches-per-epoch", "30"]
    run.stage.run("supernet", ["sh", "scripts/train_supernet.sh"] + super_extra, super_env)
    return os.path.join(super_dir, "ShuffleNas-supernet-final.params")


def _searches(run, supernet_params):
    """2. Genetic and random search with as many candidates; returns both results and the
    comparison."""
    args, py = run.args, run.py
    pop, gens = ("6", "2") if run.fast else ("16", "5")
    search_common = ["--dataset", "digits", "--supernet-params", supernet_params, "--use-se",
                     "--last-conv-after-pooling", "--max-flops", str(args.max_flops),
                     "--update-bn-images", "256" if run.fast else "1024", "--batch-size", "128",
                     "--seed", run.seed, "--topk", "3", "-j", "1"]
    gen_dir = run.path("search_genetic")
    run.stage.run("search_genetic", [py, "search_supernet.py", "--search-mode", "genetic",
                                     "--population-size", pop, "--retain-length",
                                     "2" if run.fast else "4", "--search-iters", gens,
                                     "--output-dir", gen_dir, "--export-best",
                                     run.path("best_inherited")] + search_common)
    with open(os.path.join(gen_dir, "search_results.json")) as f:
        genetic = json.load(f)
    rand_dir = run.path("search_random")
    run.stage.run("search_random", [py, "search_supernet.py", "--search-mode", "random",
                                    "--search-iters", str(genetic["evaluated"]),
                                    "--output-dir", rand_dir] + search_common)
    with open(os.path.join(rand_dir, "search_results.json")) as f:
        random_res = json.load(f)
    run.stage.run("compare_searches", [py, "-m", "oneshot_nas.cli.compare_searches",
                                       "--genetic", os.path.join(gen_dir, "search_results.json"),
                                       "--random", os.path.join(rand_dir, "search_results.json"),
                                       "--output", os.path.join(args.plot_dir,
                                                                "search_genetic_vs_random.png")])
    with open(os.path.join(args.plot_dir, "search_genetic_vs_random.json")) as f:
        compared = json.load(f)
    return genetic, random_res, compared


def _train_winner(run, best):
    """3. The winner trained from scratch; returns its exported graph and last-epoch top-1."""
    sub_dir = run.path("subnet")
    sub_env = {"SAVE_DIR": sub_dir, "BLOCK_CHOICES": best["block_choices"],
               "CHANNEL_CHOICES": best["channel_choices"], "SAVE_FREQUENCY": "100"}
    if run.fast:
        sub_env["NUM_EPOCHS"] = "4"
    run.stage.run("subnet", ["sh", "scripts/train_fixArch+.sh", "--seed", run.seed], sub_env)
    symbol = os.path.join(sub_dir, "ShuffleNas_fixArch-symbol.json")
    params = os.path.join(sub_dir, "ShuffleNas_fixArch-0000.params")
    with open(os.path.join(run.args.log_dir, "shufflenas_oneshot+.jsonl")) as f:
        sub_rows = [json.loads(l) for l in f]
    # the last epoch: picking the best epoch would select on the validation images
    sub_top1 = [r["top1"] for r in sub_rows if r["kind"] == "val"][-1]
    return symbol, params, sub_top1


def _counts(run, best, symbol):
    """4. FLOPs / params on the exported symbol and at 224 px, and the MicroNet profile."""
    py = run.py
    choices = ["--block-choices", best["block_choices"], "--channel-choices",
               best["channel_choices"], "--use-se", "--last-conv-after-pooling"]
    flops32 = _last_json(run.stage.run("flops", [py, "calculate_flops.py", "-s", symbol, "-ds",
                                                 "data,1,3,32,32", "--json"]))
    flops224 = _last_json(run.stage.run("flops_224", [py, "calculate_flops.py"] + choices +
                                        ["-norelubn", "--json"]))
    micronet_md = os.path.join(run.args.plot_dir, "micronet_profile.md")
    micronet = _last_json(run.stage.run("micronet", [py, "calculate_flops.py"] + choices +
                                        ["--micronet", "--micronet-markdown", micronet_md,
                                         "--json"]))
    return flops32, flops224, micronet


def _deploy(run, symbol, params):
    """5-6. int8 with MKLDNN (evaluated and timed) and the checked ONNX export."""
    quant_dir = run.path("int8")
    eval_json = os.path.join(quant_dir, "eval.json")
    run.stage.run("int8", ["sh", "scripts/quantize_int8.sh", "--speed",
                           "--repeats", "3" if run.fast else "10", "--eval-json", eval_json],
                  {"DATASET": "digits", "SYMBOL": symbol, "PARAMS": params,
                   "OUTPUT_DIR": quant_dir, "CALIB_MODE": "naive"})
    with open(eval_json) as f:
        quant = {v["name"]: v for v in json.load(f)["variants"]}
    # the float32 graph (with the digits preprocessing beside it), checked
    out = run.stage.run("onnx", [run.py, "-m", "oneshot_nas.cli.export_onnx", "--symbol",
                                 os.path.join(quant_dir, "ShuffleNas_fixArch-symbol.json"),
                                 "--output", run.path("onnx", "subnet.onnx"), "--json"])
    return quant, _last_json(out)


def _plots(run, genetic, random_res):
    """Training curves, the search comparison and the searches' own plots, in --plot-dir."""
    args, plots = run.args, []
    for metrics, name in ((os.path.join(args.log_dir, "shufflenas_supernet.jsonl"), "supernet"),
                          (os.path.join(args.log_dir, "shufflenas_oneshot+.jsonl"), "subnet")):
        out = run.stage.run("plot_" + name, [run.py, "-m", "oneshot_nas.cli.plot_training",
                                             metrics, "--output-dir", args.plot_dir, "--title",
                                             "digits %s" % name])
        plots += [l.strip() for l in out.splitlines()
                  if l.strip().endswith(".png") and " INFO " not in l]
    plots += [os.path.join(args.plot_dir, "search_genetic_vs_random.png")]
    for res, name in ((genetic, "search_genetic"), (random_res, "search_random")):
        for src in res["plots"]:
            dst = os.path.join(args.plot_dir, "%s_%s" % (name, os.path.basename(src)))
            shutil.copyfile(src, dst)
            plots.append(dst)
    return plots


def _summary_rows(run, r):
    """The summary table's rows from the stages' results ``r``."""
    quant, onnx_check, best = r["int8"], r["onnx"], r["best"]
    ms = {k: v["score"] for k, v in r["micronet"]["micronet"]["scores"].items()}
    pair = r["search_comparison"][0]
    return [
        ("subnet block choices", best["block_choices"]),
        ("subnet channel choices", best["channel_choices"]),
        ("FLOPs / params at 224 px, 1000 classes (-norelubn)",
         "%.2f M / %.3f M" % (r["flops_224"]["flops_m"], r["flops_224"]["params_m"])),
        ("FLOPs / params of the exported digits symbol (32 px, 10 classes)",
         "%.2f M / %d" % (r["flops_32"]["flops_m"], r["flops_32"]["params"])),
        ("fp32 top-1 (trained from scratch, last epoch, validation split)",
         "%.2f %%" % (100 * r["fp32_top1"])),
        ("fp32 / int8 top-1 of the exported graph (naive calibration)", "%.2f %% / %.2f %%" % (
            100 * quant["fp32"]["top1"], 100 * quant["int8"]["top1"])),
        ("fp32 / fused fp32 / int8 throughput, batch 32", "%.0f / %.0f / %.0f img/s" % tuple(
            quant[k]["throughput"] or float("nan") for k in ("fp32", "fp32-fused", "int8"))),
        ("ONNX (opset %d) vs MXNet, batch 1 / 7, 32 / 64 px" % onnx_check["opset"],
         "max relative difference %.1e (%s)" % (onnx_check["max_relative"], onnx_check["onnx"])),
        ("MicroNet score float32 / float16 / int8", " / ".join(
            "%.3f" % ms.get(k, float("nan")) for k in ("float32", "float16", "int8"))),
        _search_row(r["split_name"], pair, r.get("search_score", "acc")),
        ("ranking evidence", RANKING_NOTE),
        ("total time", "%.1f min" % ((time.time() - run.t0) / 60)),
    ]


def _search_row(split_name, pair, score):
    """The searches' best supernet scores in their own unit: held-out top-1 (%), or, for the
    loss fitness exp(-loss), the held-out cross-entropy itself (lower is better)."""
    best = (pair["genetic_best"], pair["random_best"])
    if score == "loss":
        unit, value = "held-out loss", "%.4f / %.4f" % tuple(-math.log(b) for b in best)
    else:
        unit, value = "supernet scores", "%.2f %% / %.2f %%" % tuple(100 * b for b in best)
    return ("search on %s images: genetic / random best at %d candidates (%s)"
            % (split_name, pair["candidates"], unit), value)


def _write_summary(run, summary):
    """Print the summary and write demo_summary.txt / .json into --log-dir."""
    args = run.args
    rows = _summary_rows(run, summary)
    width = max(len(k) for k, _ in rows)
    lines = ["", "=" * 80, "SUMMARY (digits, %s run, seed %s)" % ("fast" if run.fast else "full",
                                                                run.seed), "=" * 80]
    lines += ["%-*s  %s" % (width, k, v) for k, v in rows]
    lines += ["", "plots:"] + ["  " + os.path.relpath(p_, run.root) for p_ in summary["plots"]]
    lines += ["logs: %s/demo_*.log, %s/*.log" % (args.log_dir, args.log_dir),
              "run folder (weights, search results, ONNX, int8): %s" % args.work_dir]
    text = "\n".join(lines)
    print(text)
    with open(os.path.join(args.log_dir, "demo_summary.txt"), "w") as f:
        f.write(text + "\n")
    stored = {k: v for k, v in summary.items() if k != "split_name"}
    with open(os.path.join(args.log_dir, "demo_summary.json"), "w") as f:
        json.dump(stored, f, indent=1, default=str)


def main(argv=None):
    run = _Run(build_parser().parse_args(argv))
    supernet_params = _train_supernet(run)
    genetic, random_res, compared = _searches(run, supernet_params)
    best = genetic["topk"][0]
    symbol, params, sub_top1 = _train_winner(run, best)
    flops32, flops224, micronet = _counts(run, best, symbol)
    quant, onnx_check = _deploy(run, symbol, params)
    plots = _plots(run, genetic, random_res)
    summary = {"fast": run.fast, "seed": run.args.seed, "best": best,
               "genetic_best_top1": genetic["topk"][0]["top1"],
               "random_best_top1": random_res["topk"][0]["top1"], "fp32_top1": sub_top1,
               "int8": quant, "onnx": onnx_check, "flops_224": flops224, "flops_32": flops32,
               "micronet": micronet, "stage_seconds": run.stage.times, "plots": plots,
               "search_comparison": compared["pairs"], "ranking": RANKING_NOTE,
               "search_score": compared.get("search_score", "acc"),
               "split_name": genetic.get("split", {}).get("name", "val")}
    _write_summary(run, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
