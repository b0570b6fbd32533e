#!/usr/bin/env python3
"""Regenerates the README's quickstart section from a run of `gradhpo reproduce quickstart`.

The section is everything from the heading "## Quickstart" to the next "## " heading. Its
table, times and claims come from the run, never from hand-edited text:

  tools/readme_quickstart.py --run build/tools/gradhpo      # runs the quickstart now, then rewrites
  tools/readme_quickstart.py --log out.txt --folder runs/quickstart --seconds 312
                                                            # from a saved run: its output (stdout),
                                                            # its run folder and its wall time

The claims are read from results.json: which method has the higher mean test accuracy over the
seeds, whether the difference exceeds two standard errors of the difference, and what each
method used of the budget (trials, seconds, work). --readme names the file (default: README.md
next to tools/); --dry-run prints the section instead of writing it.
"""
import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_quickstart(binary, folder):
    start = time.monotonic()
    p = subprocess.run([binary, "reproduce", "quickstart", "--out", folder, "--overwrite"], cwd=ROOT,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seconds = time.monotonic() - start
    if p.returncode != 0:
        sys.exit("readme_quickstart: the quickstart failed:\n" + p.stdout)
    return p.stdout, seconds


def cpu_model():
    try:
        out = subprocess.run(["lscpu"], stdout=subprocess.PIPE, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def seed_tables(log):
    """The first seed's table and the table over seeds, as printed."""
    lines = log.splitlines()
    first = []
    for i, line in enumerate(lines):
        if line.startswith("equal ") and not first:
            j = i
            while j < len(lines) and not lines[j].startswith("hyperparameters at each"):
                first.append(lines[j])
                j += 1
            break
    over = []
    if "over seeds:" in lines:
        i = lines.index("over seeds:") + 1
        while i < len(lines) and not lines[i].startswith("run folder:") and not lines[i].startswith("paper vs ours") \
                and not lines[i].startswith("every hyperparameter of every method") and lines[i].strip():
            over.append(lines[i])
            i += 1
    return "\n".join(first), "\n".join(over)


def spread(values):
    v = [x for x in values if x is not None and math.isfinite(x)]
    if not v:
        return float("nan"), float("nan"), 0
    m = sum(v) / len(v)
    if len(v) < 2:
        return m, float("nan"), len(v)
    sd = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1))
    return m, sd / math.sqrt(len(v)), len(v)


def section(log, folder, seconds):
    results = json.load(open(os.path.join(folder, "results.json")))
    config = json.load(open(os.path.join(folder, "config.json")))["options"]
    runs = results.get("runs") or [{"seed": 0, "comparison": results}]
    methods = [r["method"] for r in results["results"]]
    acc, used = {}, {}
    for k, name in enumerate(methods):
        rows = [run["comparison"]["results"][k] for run in runs]
        acc[name] = spread([r["test_accuracy"] for r in rows])
        used[name] = (sum(r["evaluations"] for r in rows) / len(rows), sum(r["seconds"] for r in rows) / len(rows),
                      sum(r.get("work_steps", 0) or 0 for r in rows) / len(rows))
    ranked = sorted(methods, key=lambda m: -acc[m][0])
    best, other = ranked[0], ranked[1] if len(ranked) > 1 else None
    first_table, over_table = seed_tables(log)
    n = len(runs)
    equalise = results.get("equalise", "none")
    budget = "equal wall time (random search gets the seconds forward mode used)" if equalise == "seconds" else \
        "equal engine work" if equalise == "work" else "an equal number of inner steps"
    out = []
    out.append("## Quickstart: what `tools/run.sh` prints\n")
    out.append(
        "With no arguments the program runs `gradhpo reproduce quickstart`: an MLP (one hidden layer of "
        f"{config['hidden'][0]}) on {config['train-size']:,} Fashion-MNIST images, {config['steps']} steps of batch "
        f"{config['batch-size']}; {config['lr-blocks']} learning rates, the momentum and the weight decay learned from "
        "zero by forward mode with the sign optimizer (Micaelli & Storkey's Algorithm 1), against random search over a "
        "practitioner's space (log-uniform learning rates and weight decay, momentum in [0, 0.99]) at "
        f"{budget}, over {n} paired seeds. This run took {seconds / 60:.1f} minutes on {cpu_model()} "
        "(2 cores, shared with other work while it ran); it ends with the table over seeds:\n")
    out.append("```\n" + over_table + "\n```\n")
    out.append("The first seed's table (work: engine multiply-adds and elementwise operations in plain-training-step "
               "equivalents; wall s on the budget's clock):\n")
    out.append("```\n" + first_table + "\n```\n")
    if other:
        (mb, seb, _), (mo, seo, _) = acc[best], acc[other]
        se = 100 * math.sqrt((seb if math.isfinite(seb) else 0) ** 2 + (seo if math.isfinite(seo) else 0) ** 2)
        diff = 100 * (mb - mo)  # both in points
        verdict = (f"a difference of {diff:.1f} points, more than two standard errors of the difference ({se:.1f})"
                   if se > 0 and diff > 2 * se else
                   f"a difference of {diff:.1f} points, within two standard errors of the difference "
                   f"({se:.1f}): not resolved by {n} seeds")
        ub, uo = used[best], used[other]
        out.append(
            f"Over the {n} seeds {best} reaches {100 * mb:.1f}% mean test accuracy and {other} {100 * mo:.1f}%: "
            f"{verdict}. Per seed, {best} ran {ub[0]:.0f} units in {ub[1]:.1f} s ({ub[2]:.0f} plain-step equivalents "
            f"of work) and {other} {uo[0]:.0f} in {uo[1]:.1f} s ({uo[2]:.0f}). Each test accuracy is that of the "
            "configuration the method chose on validation. The numbers differ slightly from machine to machine, since "
            "the fastest GEMM library for each product shape is chosen by timing on the machine that runs it (see "
            "Build options); that timing is done before any method's clock starts. The run folder `runs/quickstart/` "
            "also holds results.json (every seed), results.csv, the bar chart comparison.svg/.png and index.html. "
            "This section is regenerated from a run by `tools/readme_quickstart.py`.\n")
    # Prose wrapped at 100 columns like the rest of the README; code blocks as printed.
    return "\n".join(part if part.startswith("```") or part.startswith("#") else textwrap.fill(part.rstrip("\n"), 100) + "\n"
                     for part in out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", metavar="GRADHPO", help="run this gradhpo binary's quickstart now")
    ap.add_argument("--log", help="a saved run's output")
    ap.add_argument("--folder", default=os.path.join(ROOT, "runs", "quickstart"), help="its run folder")
    ap.add_argument("--seconds", type=float, help="its wall time (with --log)")
    ap.add_argument("--readme", default=os.path.join(ROOT, "README.md"))
    ap.add_argument("--dry-run", action="store_true")
    a = ap.parse_args()
    if a.run:
        log, seconds = run_quickstart(a.run, a.folder)
    elif a.log and a.seconds is not None:
        log, seconds = open(a.log).read(), a.seconds
    else:
        ap.error("give --run GRADHPO, or --log FILE --seconds S (and --folder)")
    text = section(log, a.folder, seconds)
    if a.dry_run:
        print(text)
        return
    readme = open(a.readme).read()
    m = re.search(r"^## Quickstart.*?(?=^## )", readme, flags=re.S | re.M)
    if not m:
        sys.exit("readme_quickstart: no '## Quickstart' section in " + a.readme)
    # Keep the picture line if the section had one (the plot is the output helper's).
    picture = re.search(r"^!\[.*$", m.group(0), flags=re.M)
    new = text + ("\n" + picture.group(0) + "\n" if picture else "") + "\n"
    open(a.readme, "w").write(readme[:m.start()] + new + readme[m.end():])
    # The picture under the section is this run's schedule plot.
    picture = os.path.join(a.folder, "schedule.png")
    if os.path.exists(picture):
        shutil.copyfile(picture, os.path.join(ROOT, "tools", "doc", "quickstart.png"))
    print("readme_quickstart: rewrote the quickstart section of " + a.readme)


if __name__ == "__main__":
    main()
