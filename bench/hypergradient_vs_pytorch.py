#!/usr/bin/python3
"""Issue 21's hypergradient benchmark: ours against a PyTorch user's unrolled loop, same problem.

Two problems (bench/hypergradient_vs_pytorch.cpp describes them; both sides read the same MNIST
files, and ours writes w0, theta0 and the MLP's batch order for PyTorch with --dump):
  logreg  logistic regression, per-entry L2 (7,850 hyperparameters), full batch 5,000, T = 100, float64
          ours: reverse store-all, exact reversal, checkpointing  vs  PyTorch create_graph unrolled
  mlp     MLP 784-256-256-10, 10 lr blocks + momentum + weight decay, batch 128, T = 100, float32
          ours: the same three, forward mode (12 columns in one pass)  vs  create_graph unrolled,
          and forward_ad x 12 (one forward-mode run per hyperparameter)
Every run is a process of its own that computes ONE hypergradient (so its peak memory is that
method's), repeated --runs times (default 5), ours and PyTorch's interleaved, under
MALLOC_MMAP_THRESHOLD_=131072 on both sides. Reported per method, medians:
  time      seconds of the hypergradient call alone (wall, and CPU of all threads: the robust one
            on a shared machine), ours / PyTorch
  peak      VmHWM of the whole process, and its growth during the call (the high-water mark reset
            just before the call, minus the resident size then), ours / PyTorch
  agree     max |ours - PyTorch| / max |PyTorch| of the hypergradients
PyTorch is optional: without `import torch` its side is skipped and ours is still run.

  python3 bench/hypergradient_vs_pytorch.py [--build build] [--data /work/shared/data]
          [--runs 5] [--threads 2] [--problems logreg,mlp] [--steps 100] [--only store-all,...]

The PyTorch side is this same file: --torch-child PROBLEM METHOD DUMPDIR OUT.
"""
import argparse
import gzip
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# (label, our method and options or None, PyTorch method or None)
METHODS = {
    "logreg": [
        ("train", ["train"], "train"),
        ("store-all", ["reverse", "policy=store-all"], "reverse"),
        ("exact-reversal", ["reverse", "policy=exact-reversal"], "reverse"),
        ("checkpoint", ["reverse", "policy=checkpoint"], "reverse"),
        ("auto fastest", ["reverse", "policy=auto", "memory-budget=fastest"], "reverse"),
        ("auto budget=PyTorch", ["reverse", "policy=auto", "memory-budget=TORCH"], "reverse"),
    ],
    "mlp": [
        ("train", ["train"], "train"),
        ("store-all", ["reverse", "policy=store-all"], "reverse"),
        ("exact-reversal", ["reverse", "policy=exact-reversal"], "reverse"),
        ("checkpoint", ["reverse", "policy=checkpoint"], "reverse"),
        ("auto fastest", ["reverse", "policy=auto", "memory-budget=fastest"], "reverse"),
        ("auto budget=PyTorch", ["reverse", "policy=auto", "memory-budget=TORCH"], "reverse"),
        ("forward", ["forward"], "forward_ad"),
        ("forward-single", ["forward", "single-direction=true"], None),
    ],
}

VAL_COUNT, LOGREG_TRAIN, MLP_BATCH = 5000, 5000, 128


# ---- PyTorch side --------------------------------------------------------------------------------

def read_idx(path):
    import numpy as np
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def mnist_file(folder, stem):
    for name in (stem + ".gz", stem):
        for d in (folder, os.path.join(folder, "mnist")):
            p = os.path.join(d, name)
            if os.path.exists(p):
                return p
    raise FileNotFoundError(stem + " under " + folder)


def torch_child(problem, method, dump, out, data_dir, steps, threads, mlp_f64=False):
    import numpy as np
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(threads)
    dtype = torch.float64 if problem == "logreg" or mlp_f64 else torch.float32

    def images(stem, n=None):
        x = read_idx(mnist_file(data_dir, stem))
        x = x[:n] if n else x
        # uint8 / 255 in float32: the correctly rounded quotient, as data/pixels.h
        return torch.from_numpy(x.reshape(len(x), -1).astype(np.float32) / np.float32(255))

    def labels(stem, n=None):
        y = read_idx(mnist_file(data_dir, stem)).astype(np.int64)
        return torch.from_numpy(y[:n] if n else y)

    xv = images("t10k-images-idx3-ubyte", VAL_COUNT).to(dtype)
    yv = labels("t10k-labels-idx1-ubyte", VAL_COUNT)
    w0 = torch.from_numpy(np.fromfile(os.path.join(dump, problem + "_w0.bin"), dtype=np.float64)).to(dtype)
    theta0 = torch.from_numpy(np.fromfile(os.path.join(dump, problem + "_theta0.bin"), dtype=np.float64)).to(dtype)
    if problem == "logreg":
        x_all = images("train-images-idx3-ubyte", LOGREG_TRAIN).to(dtype)
        y_all = labels("train-labels-idx1-ubyte", LOGREG_TRAIN)
        sizes = [(10, 784), (10,)]
    else:
        x_all = images("train-images-idx3-ubyte")
        y_all = labels("train-labels-idx1-ubyte")
        batches = torch.from_numpy(np.fromfile(os.path.join(dump, "mlp_batches.bin"), dtype=np.int64)).reshape(-1, MLP_BATCH)
        sizes = [(256, 784), (256,), (256, 256), (256,), (10, 256), (10,)]

    def unflatten(w):
        out, at = [], 0
        for s in sizes:
            n = 1
            for d in s:
                n *= d
            out.append(w[at:at + n].view(*s))
            at += n
        return out

    def cross_entropy(z, y):  # the mean of logsumexp - z_y (forward-AD friendly: no nll_loss_backward)
        return (torch.logsumexp(z, 1) - z.gather(1, y.view(-1, 1)).view(-1)).mean()

    def logits(w, x):
        p = unflatten(w)
        h = x
        for i in range(0, len(p) - 2, 2):
            h = torch.relu(F.linear(h, p[i], p[i + 1]))
        return F.linear(h, p[-2], p[-1])

    def batch(t):
        if problem == "logreg":
            return x_all, y_all
        idx = batches[t]
        return x_all[idx].to(dtype), y_all[idx]

    def train_loss(w, th, t):
        x, y = batch(t)
        loss = cross_entropy(logits(w, x), y)
        if problem == "logreg":
            loss = loss + 0.5 * (torch.exp(th) * w * w).sum()
        return loss

    def hyper(th, t):  # lr, momentum, weight decay at step t
        if problem == "logreg":
            return 0.1, 0.9, 0.0
        return th[t * 10 // steps], th[10], th[11]

    def train_only():
        with torch.no_grad():
            th = theta0
        w, v = w0.clone(), torch.zeros_like(w0)
        for t in range(steps):
            wr = w.detach().requires_grad_(True)
            g, = torch.autograd.grad(train_loss(wr, th, t), wr)
            with torch.no_grad():
                lr, mom, wd = hyper(th, t)
                v = mom * v + (g + wd * w)
                w = w - lr * v
        return None

    def reverse():  # the plain unrolled loop: create_graph through every step
        th = theta0.clone().requires_grad_(True)
        w = w0.clone().requires_grad_(True)
        v = torch.zeros_like(w0)
        for t in range(steps):
            g, = torch.autograd.grad(train_loss(w, th, t), w, create_graph=True)
            lr, mom, wd = hyper(th, t)
            v = mom * v + (g + wd * w)
            w = w - lr * v
        d, = torch.autograd.grad(cross_entropy(logits(w, xv), yv), th, allow_unused=True)
        return d if d is not None else torch.zeros_like(th)

    def forward_ad():  # one forward-mode run per hyperparameter (torch.autograd.forward_ad)
        import torch.autograd.forward_ad as fwAD
        N = theta0.numel()
        d = torch.zeros(N, dtype=dtype)
        for k in range(N):
            e = torch.zeros(N, dtype=dtype)
            e[k] = 1
            w, v = w0.clone(), torch.zeros_like(w0)
            zw, zv = torch.zeros_like(w0), torch.zeros_like(w0)
            with fwAD.dual_level():
                th = fwAD.make_dual(theta0, e)
                for t in range(steps):
                    wp = w.detach().requires_grad_(True)
                    g, = torch.autograd.grad(train_loss(fwAD.make_dual(wp, zw), th, t), wp, create_graph=True)
                    gp, gt = fwAD.unpack_dual(g)
                    wd_, vd = fwAD.make_dual(w, zw), fwAD.make_dual(v, zv)
                    lr, mom, wd = hyper(th, t)
                    vn = mom * vd + (fwAD.make_dual(gp.detach(), gt.detach()) + wd * wd_)
                    wn = wd_ - lr * vn
                    w, zw = [x.detach() for x in fwAD.unpack_dual(wn)]
                    v, zv = [x.detach() for x in fwAD.unpack_dual(vn)]
            wr = w.detach().requires_grad_(True)
            gv, = torch.autograd.grad(cross_entropy(logits(wr, xv), yv), wr)
            d[k] = (gv * zw).sum()
        return d

    run = {"train": train_only, "reverse": reverse, "forward_ad": forward_ad}[method]
    load_peak, rss = status_kb("VmHWM"), status_kb("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    c0, t0 = time.process_time(), time.perf_counter()
    d = run()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    hwm = status_kb("VmHWM")
    if d is not None:
        d.detach().to(torch.float64).numpy().tofile(out)
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "rss_before_kb": rss, "peak_kb": max(load_peak, hwm),
                      "growth_kb": hwm - rss}))


def status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


# ---- driver ----------------------------------------------------------------------------------------

def run_json(cmd, env):
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(" ".join(cmd) + " failed:\n" + p.stderr[-3000:])
    return json.loads(p.stdout.strip().splitlines()[-1])


def read_f64(path):
    import array
    a = array.array("d")
    with open(path, "rb") as f:
        a.frombytes(f.read())
    return a


def agreement(a, b):
    if a is None or b is None or len(a) != len(b):
        return float("nan")
    scale = max(abs(x) for x in b) or 1.0
    return max(abs(x - y) for x, y in zip(a, b)) / scale


def torch_available():
    return subprocess.run([sys.executable, "-c", "import torch"], capture_output=True).returncode == 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--data", default="/work/shared/data")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--problems", default="logreg,mlp")
    ap.add_argument("--mlp-f64", action="store_true", help="the MLP problem in float64 (agreement to rounding)")
    ap.add_argument("--only", default="", help="comma-separated labels (train, store-all, ...)")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--passive", action="store_true", help="OMP_WAIT_POLICY=PASSIVE on both sides (a shared machine)")
    ap.add_argument("--torch-child", nargs=4, metavar=("PROBLEM", "METHOD", "DUMP", "OUT"))
    a = ap.parse_args()
    if a.torch_child:
        torch_child(*a.torch_child, a.data, a.steps, a.threads, a.mlp_f64)
        return
    ours = os.path.join(a.build, "bench", "hypergradient_vs_pytorch")
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072", OMP_NUM_THREADS=str(a.threads))
    if a.passive:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    have_torch = not a.no_torch and torch_available()
    if not have_torch:
        print("PyTorch not importable (or --no-torch): its side is skipped")
    tmp = tempfile.mkdtemp(prefix="hypergrad_bench_")
    only = set(filter(None, a.only.split(",")))
    print("load before: %s; threads %d%s" % (open("/proc/loadavg").read().strip(), a.threads,
                                            ", OMP_WAIT_POLICY=PASSIVE" if a.passive else ""))
    rows = []
    for problem in a.problems.split(","):
        run_json([ours, "--problem", problem, "--method", "train", "--steps", str(a.steps), "--data", a.data,
                  "--dump", tmp, "--threads", str(a.threads)], env)
        torch_runs, ours_runs = {}, {}
        for label, mine, theirs in METHODS[problem]:
            if only and label not in only:
                continue
            cmd = [ours, "--problem", problem, "--method", mine[0], "--steps", str(a.steps), "--data", a.data,
                   "--threads", str(a.threads), "--out", os.path.join(tmp, "ours.bin")]
            if a.mlp_f64:
                cmd += ["--dtype", "f64"]
            budget_from_torch = any(o.endswith("=TORCH") for o in mine[1:])
            if budget_from_torch and not torch_runs.get(theirs):
                continue  # no PyTorch figure to take the budget from
            for o in mine[1:]:
                if o.endswith("=TORCH"):
                    # The budget bounds what the plan holds (buffers and stored passes). What it does
                    # not -- the working set of one pass, the validation pass, the allocator's and the
                    # libraries' pages -- is measured on our store-all runs (their growth minus the
                    # bytes their plan reported) and left out of PyTorch's measured growth, so that
                    # the whole process fits in what PyTorch's unrolled loop grew by.
                    growth_bytes = int(statistics.median(r["growth_kb"] for r in torch_runs[theirs]) * 1024)
                    working = statistics.median(r["growth_kb"] * 1024 - r["peak_bytes"] for r in ours_runs.get("store-all", [])) \
                        if ours_runs.get("store-all") else 0
                    o = o.replace("TORCH", str(max(int(growth_bytes - working), 0)))
                cmd += ["--option", o]
            tcmd = None
            if have_torch and theirs and theirs not in torch_runs:
                tcmd = [sys.executable, os.path.abspath(__file__), "--data", a.data, "--steps", str(a.steps),
                        "--threads", str(a.threads)] + (["--mlp-f64"] if a.mlp_f64 else []) + ["--torch-child", problem, theirs, tmp,
                        os.path.join(tmp, "torch_%s_%s.bin" % (problem, theirs))]
            mine_r, theirs_r = [], []
            for _ in range(a.runs):  # interleaved: ours, PyTorch, ours, ...
                mine_r.append(run_json(cmd, env))
                if tcmd:
                    theirs_r.append(run_json(tcmd, env))
            if tcmd:
                torch_runs[theirs] = theirs_r
            ours_runs[label] = mine_r
            theirs_r = torch_runs.get(theirs, [])
            d_ours = read_f64(os.path.join(tmp, "ours.bin")) if label != "train" else None
            tpath = os.path.join(tmp, "torch_%s_%s.bin" % (problem, theirs))
            d_torch = read_f64(tpath) if theirs and theirs != "train" and os.path.exists(tpath) else None
            med = lambda rs, k: statistics.median(r[k] for r in rs) if rs else float("nan")
            row = {"problem": problem, "method": label, "torch": theirs or "-",
                   "s": med(mine_r, "seconds"), "cpu_s": med(mine_r, "cpu_seconds"),
                   "peak_MB": med(mine_r, "peak_kb") / 1024, "growth_MB": med(mine_r, "growth_kb") / 1024,
                   "t_s": med(theirs_r, "seconds"), "t_cpu_s": med(theirs_r, "cpu_seconds"),
                   "t_peak_MB": med(theirs_r, "peak_kb") / 1024, "t_growth_MB": med(theirs_r, "growth_kb") / 1024,
                   "agree": agreement(d_ours, d_torch), "notes": mine_r[-1].get("notes", "")}
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("load after: %s" % open("/proc/loadavg").read().strip())
    print()
    print("| problem | method | ours s (cpu s) | PyTorch s (cpu s) | time ours/PyTorch (cpu) | ours peak / growth MB "
          "| PyTorch peak / growth MB | memory ours/PyTorch peak (growth) | agreement |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ratio = lambda x, y: x / y if y == y and y else float("nan")
        print("| %s | %s vs %s | %.2f (%.2f) | %.2f (%.2f) | %.2f (%.2f) | %.0f / %.0f | %.0f / %.0f | %.2f (%.2f) | %.1e |" % (
            r["problem"], r["method"], r["torch"], r["s"], r["cpu_s"], r["t_s"], r["t_cpu_s"],
            ratio(r["s"], r["t_s"]), ratio(r["cpu_s"], r["t_cpu_s"]), r["peak_MB"], r["growth_MB"],
            r["t_peak_MB"], r["t_growth_MB"], ratio(r["peak_MB"], r["t_peak_MB"]),
            ratio(r["growth_MB"], r["t_growth_MB"]), r["agree"]))


if __name__ == "__main__":
    main()
