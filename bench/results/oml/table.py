#!/usr/bin/env python3
"""Markdown rows of docs/results.md's OML section from continual-*.json."""
import json
import sys
from pathlib import Path

here = Path(__file__).parent


def load(run):
    return json.loads((here / f"continual-{run}.json").read_text())["continual"]


def pct(v, h):
    return "n/a" if v is None else f"{100 * v:.1f} ± {100 * h:.1f}"


def images(runs):
    print("| representation (run) | lr | 10 classes | 25 | 50 | all (%d) | first 10 after all | i.i.d. oracle, all | zero features |"
          % load(runs[0][1])["test_classes"])
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for label, run in runs:
        c = load(run)
        rows = {r["classes"]: r for r in c["rows"]}
        last = c["rows"][-1]
        cells = [pct(rows[k]["accuracy"], rows[k]["ci95"]) for k in (10, 25, 50)]
        print(f"| {label} | {c['lr']:g} | " + " | ".join(cells) + f" | {pct(last['accuracy'], last['ci95'])} | "
              f"{pct(c['forgetting'], c['forgetting_ci95'])} | {pct(last['oracle'], last['oracle_ci95'])} "
              f"(lr {c['oracle_lr']:g}) | {100 * c['feature_zero_fraction']:.0f}% |")


def sine(runs):
    print("| representation (run) | lr | MSE after 2 functions | 5 | all 10 | first function after all | i.i.d. oracle, all 10 | zero features |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    f = lambda v, h: f"{v:.3f} ± {h:.3f}"
    for label, run in runs:
        c = load(run)
        rows = {r["functions"]: r for r in c["rows"]}
        print(f"| {label} | {c['lr']:g} | {f(rows[2]['mse'], rows[2]['ci95'])} | {f(rows[5]['mse'], rows[5]['ci95'])} | "
              f"{f(rows[10]['mse'], rows[10]['ci95'])} | {f(c['forgetting'], c['forgetting_ci95'])} | "
              f"{f(rows[10]['oracle'], rows[10]['oracle_ci95'])} (lr {c['oracle_lr']:g}) | {100 * c['feature_zero_fraction']:.0f}% |")


if __name__ == "__main__":
    runs = [("OML (`oml`)", "oml"), ("pretrain + online SGD (`pretrain`)", "pretrain"),
            ("scratch: random representation (`scratch`)", "scratch")]
    images([(l, r) for l, r in runs if (here / f"continual-{r}.json").exists()])
    print()
    sine([(l, r) for l, r in [("OML, inner lr 0.03, 4 per step (`sine-oml-b4`)", "sine-oml-b4"),
                              ("multitask, 4 per step (`sine-multitask-b4`)", "sine-multitask-b4"),
                              ("OML, inner lr 0.003, 1 per step (`sine-oml`)", "sine-oml"),
                              ("OML, 4 x 256, inner lr 0.003 (`sine-oml-big`)", "sine-oml-big"),
                              ("multitask, 1 per step (`sine-multitask`)", "sine-multitask"),
                              ("multitask, 4 x 256 (`sine-multitask-big`)", "sine-multitask-big"),
                              ("scratch (random, frozen)", "sine-scratch")] if (here / f"continual-{r}.json").exists()])
