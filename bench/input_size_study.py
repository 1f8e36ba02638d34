"""Which input size lets the Fashion-MNIST benchmark see block choices?

For each input size (32, 48 and 64 px by default; the network is unchanged, the 28-px images are
zero-padded to 32 px and then resized bilinearly, see ``oneshot_nas.data.fashion_mnist``):

1. the map size entering every stage, measured on the network itself;
2. the choice layers in which ShuffleNet kernels compute the same function
   (``oneshot_nas.ranking.equivalence``: two kernels whose taps that ever meet data are the
   same set compute the same function class), the map sizes counted there checked against
   those measured in 1;
3. training speed with one OpenMP thread (``--threads``): images per second of a stand-alone
   step of the stored table's smallest, median and largest architecture and supernet steps
   per second (random blocks and widths), batch 64;
4. the kernel pair: the table's median-FLOPs row with choice layers 9-19 all SNB-3 against the
   same with them all SNB-7, trained with the table's protocol at that size (``--seeds``), the
   runs cached in ``--cache`` (resumable: a rerun trains only what is missing; ``--workers 2``
   trains two runs at once, one thread each). ``--epochs N`` trains the pair N epochs instead
   of the table's 8 (everything else as the table; keep its runs in their own ``--cache``).

``--skip-training`` prints parts 1-3 only; ``--skip-speed`` leaves part 3 out.
"""
import argparse
import json
import os
import subprocess
import sys
import time

from oneshot_nas.ranking.equivalence import choice_layer_maps, same_function_layers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TABLE = os.path.join(ROOT, "docs", "ranking", "fashion_mnist_table.json")
PAIR_LAYERS = range(9, 20)
BATCH = 64


def table_rows():
    with open(TABLE) as f:
        table = json.load(f)
    return sorted(table["architectures"], key=lambda r: r["flops"])


def layer_maps(size):
    """``[(map entering choice layer i, its stride)]`` and the map entering every stage."""
    import mxnet as mx
    from oneshot_nas import Architecture, get_model
    from oneshot_nas.search_space import NUM_BLOCKS, block_layout
    net = get_model("ShuffleNas_fixArch", classes=10, input_size=size,
                    architecture=Architecture((0,) * NUM_BLOCKS, (9,) * NUM_BLOCKS))
    net.initialize()
    seen = []
    for block in net.blocks:
        block.register_forward_pre_hook(lambda blk, args: seen.append(args[0].shape[-1]))
    net(mx.nd.zeros((1, 3, size, size)))
    layout = block_layout("OneShot")
    layers = [(n, stride) for n, (_, _, _, stride) in zip(seen, layout)]
    stages = [n for n, (stage, _, _, _), prev in zip(seen, layout, [None] + list(layout))
              if prev is None or prev[0] != stage]
    return layers, stages


def speeds(size, repeats=8, warmup=4):
    """Stand-alone img/s of the smallest / median / largest table row and supernet steps/s."""
    import mxnet as mx
    import numpy as np
    from bench_common import step_seconds, training_setup
    from oneshot_nas import Architecture, get_model
    rows = table_rows()
    picks = {"small": rows[0], "middle": rows[len(rows) // 2], "large": rows[-1]}
    rng = np.random.default_rng(0)
    out = {}
    for name, row in picks.items():
        arch = Architecture.parse(row["block_choices"], row["channel_choices"])
        net = get_model("ShuffleNas_fixArch", classes=10, input_size=size, architecture=arch,
                        use_se=True, last_conv_after_pooling=True)
        net.initialize(mx.init.Xavier())
        net.hybridize(static_alloc=True, static_shape=True)
        setup = training_setup(net, BATCH, size, 10, rng, wd=4e-5)
        out[name] = (row["flops"], BATCH / step_seconds(net, setup, warmup, repeats))
    net = get_model("ShuffleNas", classes=10, input_size=size, use_se=True,
                    last_conv_after_pooling=True, affine_free_bn=True)
    net.initialize(mx.init.Xavier())
    net.hybridize(static_alloc=True)
    setup = training_setup(net, BATCH, size, 10, rng, wd=4e-5)
    out["supernet"] = 1.0 / step_seconds(
        net, setup, max(warmup, 12), repeats,
        before=lambda: net.set_architecture(Architecture.sample(rng)))
    return out


def pair_architectures():
    from oneshot_nas import Architecture
    row = table_rows()[len(table_rows()) // 2]
    base = Architecture.parse(row["block_choices"], row["channel_choices"])
    pair = {}
    for name, choice in (("3x3", 0), ("7x7", 2)):
        blocks = list(base.blocks)
        for i in PAIR_LAYERS:
            blocks[i] = choice
        pair[name] = Architecture(blocks, base.channels)
    return row["row"], pair


def pair_jobs(sizes, seeds):
    _, pair = pair_architectures()
    return [(size, name, seed) for size in sizes for seed in seeds for name in pair]


def pair_protocol(size, epochs=None):
    """The table's protocol at ``size`` px (``epochs`` instead of its 8 when given)."""
    from oneshot_nas.ranking.protocol import StandaloneProtocol
    extra = {"epochs": epochs} if epochs else {}
    return StandaloneProtocol.fashion_mnist(input_size=size, **extra)


def train_pair(sizes, seeds, cache_path, shard=None, epochs=None):
    """Train the kernel pair's missing runs (this shard's share); returns the cache."""
    from oneshot_nas.ranking.protocol import StandaloneCache, train_standalone
    _, pair = pair_architectures()
    cache = StandaloneCache(cache_path)
    jobs = pair_jobs(sizes, seeds)
    if shard is not None:
        index, count = shard
        jobs = jobs[index::count]
    for size, name, seed in jobs:
        protocol = pair_protocol(size, epochs)
        if cache.refresh().get(protocol.key(pair[name], seed)) is None:
            print("training %d px, layers 9-19 %s, seed %d, %d epochs"
                  % (size, name, seed, protocol.epochs), flush=True)
        train_standalone(pair[name], protocol, cache, seeds=[seed])
    return cache


def run_workers(args):
    procs = []
    env = dict(os.environ, OMP_NUM_THREADS=str(max(1, (os.cpu_count() or 2) // args.workers)))
    for index in range(args.workers):
        argv = [sys.executable, os.path.abspath(__file__), "--sizes", args.sizes,
                "--seeds", args.seeds, "--cache", args.cache, "--shard",
                "%d/%d" % (index, args.workers), "--skip-speed"]
        if args.epochs:
            argv += ["--epochs", str(args.epochs)]
        procs.append(subprocess.Popen(argv, env=env))
    codes = [p.wait() for p in procs]
    if any(codes):
        sys.exit("input_size_study: a worker failed (exit codes %s)" % codes)


def report_pair(sizes, seeds, cache_path, epochs=None):
    import numpy as np
    from oneshot_nas.ranking.protocol import StandaloneCache
    row, pair = pair_architectures()
    cache = StandaloneCache(cache_path)
    print("\nkernel pair: table row %d with choice layers 9-19 all SNB-3 vs all SNB-7, table "
          "protocol%s, seeds %s" % (row, " with %d epochs" % epochs if epochs else "",
                                    ",".join(map(str, seeds))))
    for size in sizes:
        protocol = pair_protocol(size, epochs)
        got = {}
        for name, arch in pair.items():
            runs = [cache.get(protocol.key(arch, s)) for s in seeds]
            got[name] = [r["top1"] for r in runs if r is not None]
        if not all(len(v) == len(seeds) for v in got.values()):
            print("%3d px: %d of %d runs finished" % (size, sum(map(len, got.values())),
                                                        2 * len(seeds)))
            continue
        a, b = (np.array(got[k]) * 100 for k in ("3x3", "7x7"))
        pooled = np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
        diff = b.mean() - a.mean()
        se = pooled * np.sqrt(2 / len(seeds))
        print("%3d px: 3x3 %.2f %% (%s), 7x7 %.2f %% (%s); 7x7 - 3x3 %+.2f points, seed sd "
              "%.2f, difference / its standard error %.1f" % (
                  size, a.mean(), ", ".join("%.2f" % v for v in a), b.mean(),
                  ", ".join("%.2f" % v for v in b), diff, pooled, diff / se if se else 0))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="32,48,64", help="input sizes in px (default 32,48,64)")
    p.add_argument("--seeds", default="0,1,2", help="kernel-pair seeds (default 0,1,2)")
    p.add_argument("--threads", type=int, default=1,
                   help="OpenMP threads of the speed measurements (default 1)")
    p.add_argument("--cache", default=os.path.join(ROOT, "docs", "ranking",
                                                    "input_size_study.runs.json"),
                   help="finished kernel-pair runs (default docs/ranking/"
                        "input_size_study.runs.json)")
    p.add_argument("--epochs", type=int, default=None,
                   help="kernel-pair epochs (default: the table protocol's 8)")
    p.add_argument("--workers", type=int, default=1,
                   help="kernel-pair runs trained at once, cores / workers threads each")
    p.add_argument("--shard", default=None, help=argparse.SUPPRESS)
    p.add_argument("--skip-training", action="store_true", help="parts 1-3 only")
    p.add_argument("--skip-speed", action="store_true", help="leave part 3 out")
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.shard:
        index, count = (int(v) for v in args.shard.split("/"))
        train_pair(sizes, seeds, args.cache, (index, count), args.epochs)
        return
    if not args.skip_speed:
        # before MXNet starts its thread pool
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    tic = time.time()
    for size in sizes:
        layers, stages = layer_maps(size)
        if layers != choice_layer_maps(size):
            sys.exit("input_size_study: the network's maps %s differ from the counted ones %s"
                     % (layers, choice_layer_maps(size)))
        some, every = same_function_layers(size)
        print("%3d px: maps entering the stem and stages %s -> %s; choice layers where two "
              "ShuffleNet kernels compute the same function: %d of %d (%s), all three: %d"
              % (size, size, " -> ".join(map(str, stages)), len(some), len(layers),
                 ",".join(map(str, some)) or "-", len(every)), flush=True)
    if not args.skip_speed:
        print("\nspeed, %d OpenMP thread(s), batch %d (medians):" % (args.threads, BATCH))
        for size in sizes:
            s = speeds(size)
            print("%3d px: stand-alone %s img/s; supernet %.2f steps/s (%.0f img/s)" % (
                size, ", ".join("%s (%.0f MFLOPs) %.0f" % (name, flops, speed)
                                for name, (flops, speed) in
                                ((k, s[k]) for k in ("small", "middle", "large"))),
                s["supernet"], s["supernet"] * BATCH), flush=True)
    if not args.skip_training:
        if args.workers > 1:
            run_workers(args)
        else:
            train_pair(sizes, seeds, args.cache, epochs=args.epochs)
        report_pair(sizes, seeds, args.cache, args.epochs)
    print("\ntotal time %.0f s" % (time.time() - tic))


if __name__ == "__main__":
    main()
