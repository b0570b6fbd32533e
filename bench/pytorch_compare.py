#!/usr/bin/python3
"""PyTorch baseline for gradhpo's model benchmarks: the same problems, the same modes, side by side.

For each model (mlp 784-256-256-10 on 784 features, lenet5 on 1x28x28, wrn16 = WRN-16-1 on
3x32x32), batch 128, float32, on --threads threads, this times in PyTorch:

  forward    loss value, no graph (torch.no_grad)
  gradient   loss.backward-style: torch.autograd.grad(loss, params)
  jvp        forward-mode AD (torch.autograd.forward_ad) of the loss along a random direction v
  hvp        H v by double backward: g = grad(L, w, create_graph=True); grad(g.v, w)
  mixed      d_lam(v . grad_w L) with L = CE + 1/2 sum lam_i w_i^2 and one lam per weight:
             g = grad(L, w, create_graph=True); grad(g.v, lam)
  hvp_k8     8 HVPs from one graph: a retain_graph loop of 8 double backwards, and the vmap form
             (autograd.grad(..., is_grads_batched=True), 1.13's batched backward) when it works;
             the faster of the two is compared, and the table says which

Every timed call includes the forward pass (as ours do). Times are medians of repeated runs
after warm-up. Then it reads gradhpo's numbers, either from --ours FILE (Google Benchmark JSON)
or by running the bench binaries under --build-dir with --benchmark_format=json (model by
model, right after PyTorch's), and prints one table per model: mode, PyTorch ms, ours ms,
ours/PyTorch, plus our in-run ratio counters. Each table says how much CPU other processes used
while it was measured: on a shared 2-core machine a busy neighbour slows OpenMP code by 10x
or more (threads wait at barriers for a descheduled sibling), so such tables are flagged.

BLAS: PyTorch must run OpenBLAS's OpenMP build (Debian libopenblas0-openmp), like ATen's own
OpenMP threading; Debian's alternatives usually select the pthread build, whose thread pool
then competes with OpenMP's. Unless --blas system is given, the script re-executes itself with
LD_LIBRARY_PATH pointing at the OpenMP build (the system alternatives are left alone) and
prints which libopenblas the process actually mapped. Our binaries run in the caller's
original environment, i.e. with whatever BLAS they were linked and installed with.

Run with Debian's interpreter (/usr/bin/python3); without torch it prints a note and exits 0.
"""

import argparse
import glob
import json
import os
import re
import statistics
import subprocess
import sys
import time

OPENMP_BLAS_DIR = "/usr/lib/x86_64-linux-gnu/openblas-openmp"
REEXEC_FLAG = "GRADHPO_PYTORCH_COMPARE_REEXEC"
ORIGINAL_LD_PATH = "GRADHPO_PYTORCH_COMPARE_ORIGINAL_LD_LIBRARY_PATH"
MODELS = ("mlp", "lenet5", "wrn16")
MODES = ("forward", "gradient", "jvp", "hvp", "mixed", "hvp_k8")
OUR_RATIOS = ("jvp_vs_forward", "hvp_vs_grad", "mixed_vs_grad", "k8_vs_8x_hvp", "gemm_fraction", "peak_fraction")
OUR_BOUNDS = ("fma_floor_ms",)
BATCH = 128


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated subset of " + ",".join(MODELS))
    p.add_argument("--quick", action="store_true", help="fewer repetitions (rougher medians)")
    p.add_argument("--ours", metavar="FILE", help="Google Benchmark JSON with our results (skips running binaries)")
    p.add_argument("--build-dir", default="build", help="CMake build dir holding bench/bench_* (default: build)")
    p.add_argument("--repetitions", type=int, default=None,
                   help="--benchmark_repetitions for our binaries, median reported (default 3, 1 with --quick)")
    p.add_argument("--no-ours", action="store_true", help="PyTorch timings only")
    p.add_argument("--blas", choices=("openmp", "system"), default="openmp",
                   help="openmp: run torch on OpenBLAS's OpenMP build (default); system: as installed")
    args = p.parse_args()
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in args.models if m not in MODELS]
    if unknown:
        p.error("unknown model(s) %s; choose from %s" % (", ".join(unknown), ", ".join(MODELS)))
    return args


def reexec_with_openmp_blas(args):
    """Re-runs this script with the OpenMP OpenBLAS first on the loader path (once)."""
    if args.blas != "openmp" or os.environ.get(REEXEC_FLAG) or not os.path.isdir(OPENMP_BLAS_DIR):
        return
    env = dict(os.environ)
    env[REEXEC_FLAG] = "1"
    env[ORIGINAL_LD_PATH] = os.environ.get("LD_LIBRARY_PATH", "")
    env["LD_LIBRARY_PATH"] = OPENMP_BLAS_DIR + (":" + env[ORIGINAL_LD_PATH] if env[ORIGINAL_LD_PATH] else "")
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable] + sys.argv, env)


def mapped_blas():
    """The BLAS/OpenMP shared objects this process has mapped (what torch actually runs)."""
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if ".so" in line}
    except OSError:
        return ["(unknown: no /proc/self/maps)"]
    return sorted(l for l in libs if re.search(r"blas|lapack|gomp|iomp|mkl", os.path.basename(l)))


# ---------------------------------------------------------------------------------------------
# Models: pure functions of a list of parameter tensors, so that one definition serves plain,
# reverse, forward-mode and double-backward evaluation.
# ---------------------------------------------------------------------------------------------

def init_params(torch, shapes, gen):
    """He-style normal weights, zero biases, unit BN scales, from (kind, shape) pairs."""
    params = []
    for kind, shape in shapes:
        if kind == "weight":
            fan_in = 1
            for d in shape[1:]:
                fan_in *= d
            params.append(torch.randn(shape, generator=gen) * (2.0 / fan_in) ** 0.5)
        elif kind == "bn_scale":
            params.append(torch.ones(shape))
        else:
            params.append(torch.zeros(shape))
    return params


def make_mlp(torch, F):
    widths = (784, 256, 256, 10)
    shapes = []
    for i, o in zip(widths[:-1], widths[1:]):
        shapes += [("weight", (o, i)), ("bias", (o,))]

    def logits(p, x):
        h = x
        for l in range(len(widths) - 1):
            h = F.linear(h, p[2 * l], p[2 * l + 1])
            if l + 2 < len(widths):
                h = F.relu(h)
        return h

    return shapes, logits, (784,)


def make_lenet5(torch, F):
    # conv 5x5 1->6 (pad 2) relu maxpool2, conv 5x5 6->16 relu maxpool2, fc 400-120-84-10.
    shapes = [("weight", (6, 1, 5, 5)), ("bias", (6,)), ("weight", (16, 6, 5, 5)), ("bias", (16,)),
              ("weight", (120, 400)), ("bias", (120,)), ("weight", (84, 120)), ("bias", (84,)),
              ("weight", (10, 84)), ("bias", (10,))]

    def logits(p, x):
        h = F.max_pool2d(F.relu(F.conv2d(x, p[0], p[1], padding=2)), 2)
        h = F.max_pool2d(F.relu(F.conv2d(h, p[2], p[3])), 2)
        h = h.flatten(1)
        h = F.relu(F.linear(h, p[4], p[5]))
        h = F.relu(F.linear(h, p[6], p[7]))
        return F.linear(h, p[8], p[9])

    return shapes, logits, (1, 28, 28)


def make_wrn16(torch, F, batch_norm, k=1):
    """WRN-16-k (Zagoruyko & Komodakis 2016): conv3x3 to 16, three groups of two pre-activation
    basic blocks of widths 16k, 32k, 64k (strides 1, 2, 2), BN-ReLU, global average pool, fc.
    Convolutions have no bias; a 1x1 conv shortcut where the width or stride changes; BN in
    train mode (batch statistics, no running statistics)."""
    widths = (16, 16 * k, 32 * k, 64 * k)
    shapes = [("weight", (16, 3, 3, 3))]
    blocks = []  # (in, out, stride, index of first param, has shortcut conv)
    c_in = 16
    for g, (c_out, stride) in enumerate(zip(widths[1:], (1, 2, 2))):
        for b in range(2):
            s = stride if b == 0 else 1
            first = len(shapes)
            shapes += [("bn_scale", (c_in,)), ("bias", (c_in,)), ("weight", (c_out, c_in, 3, 3)),
                       ("bn_scale", (c_out,)), ("bias", (c_out,)), ("weight", (c_out, c_out, 3, 3))]
            shortcut = c_in != c_out or s != 1
            if shortcut:
                shapes.append(("weight", (c_out, c_in, 1, 1)))
            blocks.append((c_in, c_out, s, first, shortcut))
            c_in = c_out
    final_bn = len(shapes)
    shapes += [("bn_scale", (c_in,)), ("bias", (c_in,)), ("weight", (10, c_in)), ("bias", (10,))]

    def logits(p, x):
        h = F.conv2d(x, p[0], padding=1)
        for c_in_, c_out, s, i, shortcut in blocks:
            o = F.relu(batch_norm(h, p[i], p[i + 1]))
            y = F.conv2d(o, p[i + 2], stride=s, padding=1)
            y = F.relu(batch_norm(y, p[i + 3], p[i + 4]))
            y = F.conv2d(y, p[i + 5], padding=1)
            h = y + (F.conv2d(o, p[i + 6], stride=s) if shortcut else h)
        h = F.relu(batch_norm(h, p[final_bn], p[final_bn + 1]))
        h = h.mean(dim=(2, 3))
        return F.linear(h, p[final_bn + 2], p[final_bn + 3])

    return shapes, logits, (3, 32, 32)


def losses(torch, F):
    """(cross_entropy, batch_norm) that work under forward AD. PyTorch 1.13 has forward-AD
    formulas for F.cross_entropy and training-mode F.batch_norm; if this build lacks them, fall
    back to the same functions written from elementary ops (log-sum-exp, mean, variance)."""
    import torch.autograd.forward_ad as fwAD

    def ce_elementary(z, y):
        m = z.detach().amax(dim=1, keepdim=True)
        lse = (z - m).exp().sum(dim=1).log() + m.squeeze(1)
        return (lse - z.gather(1, y.unsqueeze(1)).squeeze(1)).mean()

    def bn_elementary(x, gamma, beta, eps=1e-5):
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        xc = x - mean
        var = (xc * xc).mean(dim=(0, 2, 3), keepdim=True)
        return xc * (var + eps).rsqrt() * gamma.view(1, -1, 1, 1) + beta.view(1, -1, 1, 1)

    def bn_native(x, gamma, beta):
        return F.batch_norm(x, None, None, gamma, beta, training=True)

    def works(fn, *args):
        try:
            with fwAD.dual_level():
                duals = [fwAD.make_dual(a, torch.randn_like(a)) if a.is_floating_point() else a for a in args]
                return fwAD.unpack_dual(fn(*duals)).tangent is not None
        except (RuntimeError, NotImplementedError):
            return False

    ce_ok = works(F.cross_entropy, torch.randn(4, 5), torch.tensor([0, 1, 2, 3]))
    bn_ok = works(bn_native, torch.randn(4, 3, 5, 5), torch.ones(3), torch.zeros(3))
    ce = F.cross_entropy if ce_ok else ce_elementary
    bn = bn_native if bn_ok else bn_elementary
    note = "forward AD: %s cross-entropy, %s batch norm" % (
        "native" if ce_ok else "elementary-op", "native" if bn_ok else "elementary-op")
    return ce, bn, note


# ---------------------------------------------------------------------------------------------
# The six modes, each a closure doing one full evaluation (forward included).
# ---------------------------------------------------------------------------------------------

def build_modes(torch, F, name, ce, bn, seed=0, device="cpu", batch=BATCH):
    """The closures of one model. `device` and `batch` serve cuda/pytorch_gpu.py: the same random
    draws (made on the CPU generator) are moved to the device."""
    import torch.autograd.forward_ad as fwAD

    if name == "mlp":
        shapes, logits, in_shape = make_mlp(torch, F)
    elif name == "lenet5":
        shapes, logits, in_shape = make_lenet5(torch, F)
    else:
        shapes, logits, in_shape = make_wrn16(torch, F, bn)
    gen = torch.Generator().manual_seed(seed)
    w = [p.to(device).requires_grad_() for p in init_params(torch, shapes, gen)]
    lam = [torch.full_like(p, 1e-3).requires_grad_() for p in w]
    v = [torch.randn(p.shape, generator=gen).to(device) for p in w]
    V8 = [[torch.randn(p.shape, generator=gen).to(device) for p in w] for _ in range(8)]
    x = torch.randn((batch,) + in_shape, generator=gen).to(device)
    y = torch.randint(0, 10, (batch,), generator=gen).to(device)
    n = sum(p.numel() for p in w)

    def loss(params):
        return ce(logits(params, x), y)

    def regularised(params, lams):
        return loss(params) + 0.5 * sum((l * p * p).sum() for l, p in zip(lams, params))

    def forward():
        with torch.no_grad():
            return loss(w)

    def gradient():
        return torch.autograd.grad(loss(w), w)

    def jvp():
        with fwAD.dual_level():
            duals = [fwAD.make_dual(p.detach(), t) for p, t in zip(w, v)]
            return fwAD.unpack_dual(loss(duals)).tangent

    def hvp():
        g = torch.autograd.grad(loss(w), w, create_graph=True)
        return torch.autograd.grad(sum((gi * vi).sum() for gi, vi in zip(g, v)), w)

    def mixed():
        g = torch.autograd.grad(regularised(w, lam), w, create_graph=True)
        return torch.autograd.grad(sum((gi * vi).sum() for gi, vi in zip(g, v)), lam)

    def hvp_k8_loop():
        g = torch.autograd.grad(loss(w), w, create_graph=True)
        out = []
        for k in range(8):
            out.append(torch.autograd.grad(g, w, grad_outputs=V8[k], retain_graph=k < 7))
        return out

    V8_stacked = [torch.stack([V8[k][i] for k in range(8)]) for i in range(len(w))]

    def hvp_k8_vmap():
        g = torch.autograd.grad(loss(w), w, create_graph=True)
        return torch.autograd.grad(g, w, grad_outputs=V8_stacked, is_grads_batched=True)

    modes = {"forward": forward, "gradient": gradient, "jvp": jvp, "hvp": hvp, "mixed": mixed,
             "hvp_k8": hvp_k8_loop}
    # Check the vmap form runs and agrees with the loop before offering it.
    vmap_note = None
    try:
        a, b = hvp_k8_loop(), hvp_k8_vmap()
        err = max(float((b[i][k] - a[k][i]).abs().max() / (a[k][i].abs().max() + 1e-12))
                  for k in range(8) for i in range(len(w)))
        if err < 1e-3:
            modes["hvp_k8_vmap"] = hvp_k8_vmap
        else:
            vmap_note = "vmap HVPs disagree with the loop (rel. err %.1e): not used" % err
    except Exception as e:  # noqa: BLE001 -- any failure of the batched backward means "no vmap"
        vmap_note = "vmap HVPs unavailable: %s" % str(e).split("\n")[0][:120]
    return modes, n, vmap_note


def median_ms(fn, quick):
    """Median wall time of fn() in ms, after warm-up; stops at enough runs or enough time."""
    for _ in range(1 if quick else 3):
        fn()
    min_runs, min_time, max_runs = (3, 0.3, 20) if quick else (7, 2.0, 200)
    times, start = [], time.perf_counter()
    while len(times) < max_runs and (len(times) < min_runs or time.perf_counter() - start < min_time):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def time_pytorch(torch, F, name, ce, bn, args):
    """{mode: median ms} for one model, and notes for its table."""
    modes, n, vmap_note = build_modes(torch, F, name, ce, bn)
    r = {mode: median_ms(fn, args.quick) for mode, fn in modes.items()}
    # hvp_k8: the faster of the retain_graph loop and the vmap form.
    k8_how = "retain_graph loop"
    if "hvp_k8_vmap" in r:
        r["hvp_k8_loop"] = r["hvp_k8"]
        if r["hvp_k8_vmap"] < r["hvp_k8"]:
            r["hvp_k8"], k8_how = r["hvp_k8_vmap"], "vmap (is_grads_batched)"
    notes = ["%d parameters" % n, "PyTorch hvp_k8 by " + k8_how]
    if "hvp_k8_vmap" in r:
        notes.append("(loop %.2f ms, vmap %.2f ms)" % (r["hvp_k8_loop"], r["hvp_k8_vmap"]))
    if vmap_note:
        notes.append(vmap_note)
    return r, notes


class OtherLoad:
    """Share of the machine's CPU time that OTHER processes used between start and stop: timings
    taken while it is high are disturbed (OpenMP barriers wait for descheduled threads)."""

    @staticmethod
    def _busy_jiffies():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v) - v[3] - v[4], sum(v)  # all but idle and iowait, total

    def __init__(self):
        self.available = os.path.exists("/proc/stat")
        if self.available:
            self.busy0, self.total0 = self._busy_jiffies()
            t = os.times()
            self.own0 = t.user + t.system + t.children_user + t.children_system

    def stop(self):
        """Fraction of total CPU capacity used by other processes, or None if unknown."""
        if not self.available:
            return None
        busy, total = self._busy_jiffies()
        t = os.times()
        own = t.user + t.system + t.children_user + t.children_system - self.own0
        hz = os.sysconf("SC_CLK_TCK")
        others = (busy - self.busy0) / hz - own
        return max(0.0, others / max((total - self.total0) / hz, 1e-9))


# ---------------------------------------------------------------------------------------------
# Our numbers: Google Benchmark JSON, names "<model>/<mode>/threads:<n>[/manual_time|/real_time]".
# ---------------------------------------------------------------------------------------------

TIME_UNIT_MS = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}


def parse_ours(doc, threads):
    """{model: {mode: {"ms": median, counter: value}}} for the given thread count."""
    runs = {}
    for b in doc.get("benchmarks", []):
        parts = b.get("run_name", b["name"]).split("/")
        if len(parts) < 3 or parts[0] not in MODELS or parts[1] not in MODES:
            continue
        th = [p for p in parts[2:] if p.startswith("threads:")]
        if not th or int(th[0].split(":")[1]) != threads:
            continue
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        if "error_occurred" in b and b["error_occurred"]:
            continue
        entry = {"ms": b["real_time"] * TIME_UNIT_MS[b.get("time_unit", "ns")]}
        entry.update({k: b[k] for k in OUR_RATIOS + OUR_BOUNDS if k in b})
        entry["aggregate"] = b.get("run_type") == "aggregate"
        runs.setdefault((parts[0], parts[1]), []).append(entry)
    out = {}
    for (model, mode), entries in runs.items():
        agg = [e for e in entries if e["aggregate"]]
        chosen = agg[0] if agg else sorted(entries, key=lambda e: e["ms"])[len(entries) // 2]
        out.setdefault(model, {})[mode] = chosen
    return out


def linked_blas(exe, env):
    """The BLAS/OpenMP libraries the loader resolves for one of our binaries (ldd)."""
    try:
        out = subprocess.run(["ldd", exe], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env).stdout
    except OSError:
        return []
    found = []
    for line in out.splitlines():
        parts = line.split("=>")
        if len(parts) == 2 and re.search(r"blas|lapack|gomp|iomp", parts[0]):
            target = parts[1].split("(")[0].strip()
            found.append(os.path.realpath(target) if target else parts[0].strip())
    return found


def run_our_benches(args, models):
    patterns = [os.path.join(args.build_dir, "bench", "bench_*"), os.path.join(args.build_dir, "bench_*")]
    binaries = sorted({p for pat in patterns for p in glob.glob(pat)
                       if os.path.isfile(p) and os.access(p, os.X_OK)})
    if not binaries:
        print("no bench_* binaries under %s (build them: cmake --build %s --target benchmarks)"
              % (args.build_dir, args.build_dir))
        return {}
    env = dict(os.environ)
    if REEXEC_FLAG in env:  # give our binaries the caller's loader path, not torch's
        env.pop(REEXEC_FLAG)
        original = env.pop(ORIGINAL_LD_PATH, "")
        if original:
            env["LD_LIBRARY_PATH"] = original
        else:
            env.pop("LD_LIBRARY_PATH", None)
    filt = "^(%s)/[^/]+/threads:%d" % ("|".join(models), args.threads)
    doc = {"benchmarks": []}
    for exe in binaries:
        cmd = [exe, "--benchmark_format=json", "--benchmark_filter=" + filt]
        reps = args.repetitions if args.repetitions is not None else (1 if args.quick else 3)
        if reps > 1:
            cmd += ["--benchmark_repetitions=%d" % reps, "--benchmark_report_aggregates_only=true"]
        print("running " + " ".join(cmd), file=sys.stderr)
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        if not proc.stdout.strip():
            continue  # no benchmark of this binary matched the filter
        print("  %s (links %s)" % (os.path.basename(exe), ", ".join(linked_blas(exe, env)) or "no BLAS"))
        try:
            doc["benchmarks"] += json.loads(proc.stdout).get("benchmarks", [])
        except json.JSONDecodeError:
            print("%s: output is not JSON (exit %d): %s" % (exe, proc.returncode, proc.stderr.strip()[:200]))
    return parse_ours(doc, args.threads)


def print_table(pt, us, notes):
    """One row a mode. "PyTorch/peak" is the share of the machine's FMA peak PyTorch's time
    reaches, counting only the multiply-adds of the mode's products (our fma_floor_ms: the same
    products at the peak measured in our benchmark, on as many threads); "0.8x needs" is the
    share a time of 0.8x PyTorch's would need. Above 1, no engine doing those multiply-adds can
    get there on this machine."""
    print("  %-10s %12s %12s %14s %13s %11s   %s" % ("mode", "PyTorch ms", "ours ms", "ours/PyTorch", "PyTorch/peak",
                                                   "0.8x needs", "our in-run ratios"))
    for mode in MODES:
        p = pt.get(mode)
        o = us.get(mode, {}).get("ms")
        floor = us.get(mode, {}).get("fma_floor_ms")
        ratio = "%.2f" % (o / p) if p and o else "-"
        at_peak = "%.2f" % (floor / p) if p and floor else "-"
        needs = "%.2f" % (floor / (0.8 * p)) if p and floor else "-"
        counters = ", ".join("%s=%.2f" % (k, us[mode][k]) for k in OUR_RATIOS if k in us.get(mode, {}))
        print("  %-10s %12s %12s %14s %13s %11s   %s" % (mode, "%.3f" % p if p else "-", "%.3f" % o if o else "-",
                                                       ratio, at_peak, needs, counters))
    if all(pt.get(m) for m in MODES):
        print("  PyTorch's own ratios: hvp/grad %.2f, jvp/forward %.2f, mixed/grad %.2f, hvp_k8/(8 hvp) %.2f"
              % (pt["hvp"] / pt["gradient"], pt["jvp"] / pt["forward"], pt["mixed"] / pt["gradient"],
                 pt["hvp_k8"] / (8 * pt["hvp"])))
    print("  " + "; ".join(notes))


def describe_load(what, share):
    if share is None:
        return ""
    return "%s: other processes used %.0f%% of the CPUs%s" % (
        what, 100 * share, " -- DISTURBED, rerun on an idle machine" if share > 0.05 else "")


def main():
    args = parse_args()
    reexec_with_openmp_blas(args)
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        print("python3-torch not installed: skipping (run with /usr/bin/python3 on Debian)")
        return 0
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print("PyTorch %s, %d threads, BLAS mapped: %s" % (torch.__version__, torch.get_num_threads(),
                                                      ", ".join(mapped_blas()) or "none found"))
    ce, bn, note = losses(torch, F)
    print(note)
    ours_file = None
    if args.ours:
        with open(args.ours) as f:
            ours_file = parse_ours(json.load(f), args.threads)
    for name in args.models:
        print("\n%s (batch %d, float32, %d threads)" % (name, BATCH, args.threads), flush=True)
        watch = OtherLoad()
        pt, notes = time_pytorch(torch, F, name, ce, bn, args)
        loads = [describe_load("PyTorch timings", watch.stop())]
        if ours_file is not None:
            us = ours_file.get(name, {})
        elif args.no_ours:
            us = {}
        else:
            watch = OtherLoad()
            us = run_our_benches(args, [name]).get(name, {})
            loads.append(describe_load("our benchmarks", watch.stop()))
        print_table(pt, us, notes + [l for l in loads if l])
    return 0


if __name__ == "__main__":
    sys.exit(main())
