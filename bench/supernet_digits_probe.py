"""Digits supernet recipe probe (docs/supernet_digits.md): the supernet trained on in-memory
digits (32 px, 300 training images held out), random single paths, with periodic evaluation of
5 random full-width subnets recalibrated on 512 training images and scored on the held-out
images. Writes the curve as JSON (--out); `--plot A.json B.json ... --png F` draws them.

This is the experiment harness behind the recipe table, not the user pipeline (which is
`sh scripts/train_supernet.sh` with DATASET=digits).
"""
import os
import argparse, json, math, time, sys
import numpy as np, mxnet as mx
from mxnet import autograd, gluon, nd
from sklearn.datasets import load_digits
from oneshot_nas import Architecture, get_model
from oneshot_nas.data.digits import digits_split, upscale_digit
from oneshot_nas.nn import NasBatchNorm, recalibrate_bn
from oneshot_nas.nn.batchnorm import iter_blocks

if len(sys.argv) > 1 and sys.argv[1] == "--plot":
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    files, png = sys.argv[2:sys.argv.index("--png")], sys.argv[sys.argv.index("--png") + 1]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for path in files:
        run = json.load(open(path))
        label = "%s: %s" % (os.path.basename(path).split(".")[0], run.get("label", ""))
        tr_pts = [(r["step"], r["train_acc"]) for r in run["log"] if "train_acc" in r]
        ev_pts = [(r["step"], r["heldout_full"]) for r in run["log"] if "heldout_full" in r]
        ax1.plot(*zip(*tr_pts), label=label)
        ax2.plot(*zip(*ev_pts), marker="o", label=label)
    ax1.set(xlabel="step (batch 64)", ylabel="training top-1 (last 100 steps)",
            title="supernet training accuracy")
    ax2.set(xlabel="step (batch 64)", ylabel="held-out top-1, mean of 5 subnets",
            title="recalibrated full-width subnets")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.set_ylim(0, 1)
    ax2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    sys.exit(0)

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=1200); p.add_argument("--batch", type=int, default=64)
p.add_argument("--lr", type=float, default=0.2); p.add_argument("--warmup", type=int, default=100)
p.add_argument("--affine-free", action="store_true"); p.add_argument("--ls", type=float, default=0.0)
p.add_argument("--no-se", action="store_true"); p.add_argument("--eval-every", type=int, default=400)
p.add_argument("--widths", default="full"); p.add_argument("--wd", type=float, default=4e-5)
p.add_argument("--seed", type=int, default=0); p.add_argument("--out", default=None)
p.add_argument("--label", default="")
p.add_argument("--init", default="spec"); p.add_argument("--init-gain", type=float, default=2.0)
p.add_argument("--opt", default="nag"); p.add_argument("--curriculum", type=float, default=0.0)
p.add_argument("--cs-from", type=float, default=0.5, help="fraction of steps before random widths")
a = p.parse_args()
mx.random.seed(a.seed); rng = np.random.default_rng(a.seed)
d = load_digits(); imgs = np.stack([upscale_digit(im, 32) for im in d.images]).astype(np.float32)
X = ((imgs / 255.0 - 0.5) / 0.25).transpose(0, 3, 1, 2); Y = d.target.astype(np.float32)
tr, va = digits_split(Y)
perm = np.random.RandomState(123).permutation(tr); hold, tr = np.sort(perm[:300]), np.sort(perm[300:])
Xtr, Ytr = nd.array(X[tr]), nd.array(Y[tr]); Xho, Yho = nd.array(X[hold]), Y[hold]
net = get_model("ShuffleNas", classes=10, use_se=not a.no_se, last_conv_after_pooling=not a.no_se)
net.initialize(mx.init.Xavier())
if a.init == "he":
    for name, prm in net.collect_params().items():
        if name.endswith("weight") and prm.data().ndim == 4 and prm.shape[1] * prm.shape[2] * prm.shape[3] > 0:
            fan_in = prm.shape[1] * prm.shape[2] * prm.shape[3]
            prm.set_data(nd.random.normal(0, math.sqrt(a.init_gain / fan_in), shape=prm.shape))
if a.affine_free:
    for pos in net.blocks:
        for blk in iter_blocks(pos):
            if isinstance(blk, NasBatchNorm):
                blk.gamma.set_data(nd.ones_like(blk.gamma.data())); blk.beta.set_data(nd.zeros_like(blk.beta.data()))
                blk.gamma.grad_req = "null"; blk.beta.grad_req = "null"
for name, prm in net.collect_params().items():
    if name.endswith(("gamma", "beta", "bias")): prm.wd_mult = 0
net.hybridize(static_alloc=True)
opt_args = {"learning_rate": a.lr, "wd": a.wd}
if a.opt in ("nag", "sgd"): opt_args["momentum"] = 0.9
tr_ = gluon.Trainer(net.collect_params(), a.opt, opt_args)
lf = gluon.loss.SoftmaxCrossEntropyLoss(sparse_label=a.ls == 0)
def lr_at(s):
    if s < a.warmup: return a.lr * (s + 1) / a.warmup
    return 0.5 * a.lr * (1 + math.cos(math.pi * (s - a.warmup) / max(1, a.steps - a.warmup)))
def sample(s, full):
    if full or a.widths == "full" or s < a.cs_from * a.steps:
        arch = Architecture.sample(rng, fixed_channels=(9,) * 20)
    else:
        arch = Architecture.sample(rng)
    if a.curriculum > 0:
        k = min(20, int(20 * s / (a.curriculum * a.steps)))     # random positions, from the last
        blocks = tuple(0 if i < 20 - k else b for i, b in enumerate(arch.blocks))
        arch = Architecture(blocks, arch.channels)
    return arch
def evaluate(k=5, full=True):
    accs = []
    erng = np.random.default_rng(1000)
    for _ in range(k):
        arch = Architecture.sample(erng, fixed_channels=(9,) * 20) if full else Architecture.sample(erng)
        sub = net.get_subnet(arch)
        idx = np.random.RandomState(0).permutation(len(tr))[:512]
        recalibrate_bn(sub, [Xtr[int(i):int(i) + 128] for i in range(0, 0)] or [nd.array(X[tr][idx[j:j + 128]]) for j in range(0, 512, 128)])
        sub.hybridize(static_alloc=True)
        with autograd.predict_mode():
            out = sub(Xho).asnumpy()
        accs.append(float((out.argmax(1) == Yho).mean()))
    return float(np.mean(accs)), accs
n = len(tr); order = rng.permutation(n); pos = 0
log = []; t0 = time.time(); correct = 0; seen = 0
for s in range(a.steps):
    if pos + a.batch > n: order = rng.permutation(n); pos = 0
    idx = order[pos:pos + a.batch]; pos += a.batch
    xb, yb = Xtr[idx], Ytr[idx]
    if a.ls > 0:
        yt = nd.one_hot(yb, 10) * (1 - a.ls) + a.ls / 10
    else:
        yt = yb
    net.set_architecture(sample(s, False))
    tr_.set_learning_rate(lr_at(s))
    with autograd.record():
        out = net(xb); loss = lf(out, yt)
    loss.backward(); tr_.step(a.batch, ignore_stale_grad=True)
    correct += float((out.argmax(1) == yb).sum().asscalar()); seen += a.batch
    if (s + 1) % 100 == 0:
        print("step %d  train acc %.3f  %.1f s" % (s + 1, correct / seen, time.time() - t0), flush=True)
        log.append({"step": s + 1, "train_acc": correct / seen, "time": time.time() - t0}); correct = seen = 0
    if (s + 1) % a.eval_every == 0 or s + 1 == a.steps:
        te = time.time()
        m, accs = evaluate(5, True)
        msg = {"step": s + 1, "heldout_full": m, "accs": accs, "train_time": te - t0}
        if a.widths != "full" and s + 1 == a.steps:
            msg["heldout_any"] = evaluate(5, False)[0]
        print("EVAL", json.dumps(msg), "(eval %.1f s)" % (time.time() - te), flush=True)
        log.append(msg); t0 += time.time() - te
if a.out:
    json.dump({"args": vars(a), "label": a.label, "log": log}, open(a.out, "w"))
