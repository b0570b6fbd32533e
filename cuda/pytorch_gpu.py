#!/usr/bin/env python3
"""PyTorch on the GPU against gradhpo on the GPU: the problems of bench/pytorch_compare.py
(MLP 784-256-256-10, LeNet-5, WRN-16-1; float32, the same six modes), at the batches bench_gpu
ran, with TF32 off on both sides. Ours are read from bench_gpu's output (its "csv:" block).

  python3 cuda/pytorch_gpu.py --ours gpu-check/bench_gpu.txt [--quick]

Without torch or without CUDA in torch it prints one line and exits 0."""

import argparse
import csv
import io
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
import pytorch_compare as pc  # noqa: E402  -- the model definitions and modes, shared


def read_ours(path):
    """{(model, batch, mode): ms} from bench_gpu's csv block."""
    with open(path) as f:
        text = f.read()
    if "csv:\n" not in text:
        return {}
    rows = csv.DictReader(io.StringIO(text.split("csv:\n", 1)[1]))
    return {(r["model"], int(r["batch"]), r["mode"]): float(r["ms"]) for r in rows}


def median_ms(torch, fn, quick):
    def run():
        fn()
        torch.cuda.synchronize()
    for _ in range(2):
        run()
    times, start = [], time.perf_counter()
    while len(times) < (3 if quick else 10) or (time.perf_counter() - start < (0.1 if quick else 0.5) and len(times) < 500):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ours", required=True, help="bench_gpu's output")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        print("pytorch_gpu: skipped: torch is not installed")
        return 0
    if not torch.cuda.is_available():
        print("pytorch_gpu: skipped: torch has no CUDA device")
        return 0
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    ours = read_ours(args.ours)
    batches = sorted({b for (_, b, mode) in ours if mode == "forward"}) or [128, 512]
    ce, bn, note = pc.losses(torch, F)
    print("PyTorch %s on %s; %s; TF32 off" % (torch.__version__, torch.cuda.get_device_name(), note))
    print("%-8s %6s %-10s %12s %10s %12s" % ("model", "batch", "mode", "PyTorch ms", "ours ms", "ours/PyTorch"))
    for name in pc.MODELS:
        for batch in batches:
            modes, _, _ = pc.build_modes(torch, F, name, ce, bn, device="cuda", batch=batch)
            modes.pop("hvp_k8_vmap", None)  # the retain_graph loop: what every PyTorch build has
            for mode in pc.MODES:
                pt = median_ms(torch, modes[mode], args.quick)
                us = ours.get((name, batch, mode))
                ratio = "%12.2f" % (us / pt) if us else "%12s" % "-"
                print("%-8s %6d %-10s %12.3f %10s %s" % (name, batch, mode, pt, "%.3f" % us if us else "-", ratio),
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
