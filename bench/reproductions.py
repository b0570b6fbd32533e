#!/usr/bin/env python3
"""The papers' tables at both budgets, side by side: equal seconds and equal inner steps.

Runs `gradhpo reproduce NAME` twice per table -- once as its config says (equal seconds: every
method gets the wall time the first one used, Micaelli & Storkey's "comparable GPU time") and
once with --set equalise=none (equal inner steps, the accounting that favours gradient methods)
-- and prints one markdown table per reproduction: each method's test accuracy mean +- sd over
the seeds, the trials or outer steps it ran and the seconds it used under each budget, the
paper's number, and whether the paper's ordering holds under each budget. What the reproduce
runs print and write stays in their run folders under --out.

    bench/reproductions.py                               # the tables at their config scale
    bench/reproductions.py --set train-size=10000 ...    # larger: --set goes to every run
    bench/reproductions.py --tables ms-table1 --markdown summary.md
    bench/reproductions.py --tables-only --out DIR       # the tables again from DIR's run folders

Standard library only; needs a built `gradhpo` (build/tools/gradhpo by default).
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time

TABLES = ["ms-table1", "cs6787-table1", "franceschi-cleaning", "hippotrainer-poc"]
BUDGETS = [("equal seconds", []), ("equal inner steps", ["--set", "equalise=none"])]


def cpu_name():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        name = next((l.split(":", 1)[1].strip() for l in out.splitlines() if l.startswith("Model name")), "")
        flags = next((l for l in out.splitlines() if l.startswith("Flags")), "")
        return f"{name or platform.processor()}, {os.cpu_count()} cores, AVX-512 {'yes' if 'avx512f' in flags else 'no'}"
    except OSError:
        return platform.processor()


def run_table(gradhpo, name, budget_args, extra, folder):
    """Runs one reproduction; returns (results.json, reproduce.json, wall seconds, exit status)."""
    cmd = [gradhpo, "reproduce", name, "--overwrite", "--no-plots", "--out", folder] + budget_args
    for s in extra:
        cmd += ["--set", s]
    start = time.monotonic()
    with open(folder + ".log", "w") as log:
        status = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT).returncode
    wall = time.monotonic() - start
    with open(folder + ".log", "a") as log:
        log.write(f"reproductions: exit {status} after {wall:.1f} s\n")
    return read_table(folder)[:2] + (wall, status)


def read_table(folder):
    """What one reproduction left in its folder: (results.json, reproduce.json, wall s, exit status)."""
    load = lambda f: json.load(open(os.path.join(folder, f))) if os.path.exists(os.path.join(folder, f)) else None
    wall, status = float("nan"), None
    try:
        last = [l for l in open(folder + ".log") if l.startswith("reproductions: exit ")][-1].split()
        status, wall = int(last[2]), float(last[4])
    except (OSError, IndexError, ValueError):
        pass
    return load("results.json"), load("reproduce.json"), wall, status


def cell(summary_row):
    """'90.20 ± 0.14 (10 runs, 3.4 s)' from a results.json summary row."""
    acc, runs, sec = summary_row["test_accuracy"], summary_row["evaluations"], summary_row["seconds"]
    sd = f" ± {100 * acc['sd']:.2f}" if acc.get("sd") is not None else ""
    n = f"{runs['mean']:.3g}"
    return f"{100 * acc['mean']:.2f}{sd} ({n} run{'' if n == '1' else 's'}, {sec['mean']:.1f} s)"


def paper_numbers(reproduce):
    """The paper's test accuracy by our table's method name ("forward mode + sign" -> "98.7 ± 0.1")."""
    return {row["row"]: f"{row['paper']:g}" + (f" ± {row['paper_sd']:g}" if row.get("paper_sd") is not None else "")
            for row in (reproduce or {}).get("rows", [])
            if row.get("metric") == "test_accuracy" and row.get("row") and row.get("paper") is not None}


def ranking(results):
    """'A > B (1.2 points, se 0.3) > C (within the spread: ...)': the methods by mean test accuracy
    over the seeds, each step down with its paired difference (the same seeds for every method)
    and its standard error; a step smaller than two standard errors is marked as not resolved."""
    per_seed = [{r["method"]: r.get("test_accuracy") for r in run["comparison"]["results"]}
                for run in (results or {}).get("runs", [])]
    means = {row["method"]: row["test_accuracy"]["mean"] for row in (results or {}).get("summary", [])}
    order = sorted(means, key=lambda m: -means[m])
    if not order:
        return ""
    text = order[0]
    for hi, lo in zip(order, order[1:]):
        d = [100 * (s[hi] - s[lo]) for s in per_seed if s.get(hi) is not None and s.get(lo) is not None]
        if len(d) < 2:
            text += f" > {lo}"
            continue
        mean = sum(d) / len(d)
        se = (sum((x - mean) ** 2 for x in d) / (len(d) - 1)) ** 0.5 / len(d) ** 0.5
        resolved = "" if mean > 2 * se else ", within the spread"
        text += f" > {lo} ({mean:.2f} points, se {se:.2f}{resolved})"
    return text


def table_markdown(name, runs):
    """runs: [(budget label, results, reproduce, wall, status)]."""
    lines = [f"### {name}", ""]
    methods = []
    for _, results, _, _, _ in runs:
        for row in (results or {}).get("summary", []):
            if row["method"] not in methods:
                methods.append(row["method"])
    header = "| method | " + " | ".join(label for label, *_ in runs) + " | paper |"
    lines += [header, "|---" * (len(runs) + 2) + "|"]
    papers = {}
    for _, _, reproduce, _, _ in runs:
        papers.update(paper_numbers(reproduce))
    for m in methods:
        cells = []
        for _, results, _, _, _ in runs:
            rows = {r["method"]: r for r in (results or {}).get("summary", [])}
            cells.append(cell(rows[m]) if m in rows else "–")
        paper = papers.get(m)
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {paper if paper is not None else '–'} |")
    lines.append("")
    no_order = ("no paper ordering (fewer than two of these methods have a paper number)" if papers
                else "no paper ordering (the paper reports no numbers for this table)")
    for label, results, reproduce, wall, status in runs:
        order = (reproduce or {}).get("ordering", "").strip().replace("\n", "; ")
        budget = ", ".join(f"{v:g} {k.replace('_', ' ')}" for k, v in (results or {}).get("budget", {}).items() if v) or "–"
        note = ("no results.json" if results is None else "exit status not recorded" if status is None
                else f"exit {status}" if status else "ok")
        summary = (results or {}).get("summary", [])
        if (results or {}).get("equalise") == "seconds" and summary:
            budget += f"; the others its {summary[0]['seconds']['mean']:.1f} s"
        lines.append(f"- {label} ({note}, {wall:.0f} s; the first method's budget: {budget}): "
                     f"{order or no_order}")
        lines.append(f"  - ours by mean test accuracy, each step its paired difference over the seeds: {ranking(results)}")
    protocol = next((rep.get("protocol") for _, _, rep, _, _ in runs if rep and rep.get("protocol")), {})
    lines += [f"- protocol, {method}: {text}" for method, text in protocol.items()]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gradhpo", default="build/tools/gradhpo")
    ap.add_argument("--tables", nargs="+", default=TABLES)
    ap.add_argument("--set", action="append", default=[], help="KEY=VALUE passed to every run (the scale)")
    ap.add_argument("--out", default="runs/bench-reproductions")
    ap.add_argument("--markdown", help="also write the tables to this file")
    ap.add_argument("--tables-only", action="store_true",
                    help="run nothing: print the tables from the run folders an earlier run left under --out")
    a = ap.parse_args()
    if not os.access(a.gradhpo, os.X_OK):
        sys.exit(f"reproductions: no gradhpo program at {a.gradhpo} (build it, or give --gradhpo)")
    os.makedirs(a.out, exist_ok=True)
    settings = "as each table's runs said" if a.tables_only else " ".join(a.set) or "none (config scale)"
    text = f"CPU: {cpu_name()}; extra settings: {settings}\n\n"
    print(text, end="", flush=True)
    for name in a.tables:
        runs = []
        for label, budget_args in BUDGETS:
            folder = os.path.join(a.out, f"{name}-{'seconds' if budget_args == [] else 'steps'}")
            if a.tables_only:
                results, reproduce, wall, status = read_table(folder)
            else:
                results, reproduce, wall, status = run_table(a.gradhpo, name, budget_args, a.set, folder)
            runs.append((label, results, reproduce, wall, status))
        md = table_markdown(name, runs)
        if a.tables_only:  # the scale the runs had, from the reproduce command's own line
            log = os.path.join(a.out, f"{name}-seconds.log")
            said = [l.strip() for l in open(log, errors="replace") if l.strip().startswith("overridden here:")] \
                if os.path.exists(log) else []
            md += f"- settings: {said[0].split(':', 1)[1].strip() if said else 'as the config says'}\n"
        print(md, flush=True)
        text += md + "\n"
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
