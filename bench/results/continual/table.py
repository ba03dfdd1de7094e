#!/usr/bin/env python3
"""Markdown table of docs/results.md's section "Continual learning: the
paper's OML meta-loss and whole-network baselines" from the continual-*.json
files here (a run not re-measured here is read from ../oml/, the previous
section's folder, and marked so)."""
import json
from pathlib import Path

here = Path(__file__).parent


def load(run):
    for folder in (here, here.parent / "oml"):
        f = folder / f"continual-{run}.json"
        if f.exists():
            return json.loads(f.read_text())["continual"], folder != here
    return None, False


def pct(v, h):
    return "n/a" if v is None else f"{100 * v:.1f} ± {100 * h:.1f}"


def table(runs):
    print("| learner (run) | lr | 10 classes | 25 | 50 | all (97) | first 10 after all | i.i.d. oracle, all | zero features |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for label, run in runs:
        c, old = load(run)
        if c is None:
            continue
        rows = {r["classes"]: r for r in c["rows"]}
        last = c["rows"][-1]
        cells = [pct(rows[k]["accuracy"], rows[k]["ci95"]) for k in (10, 25, 50)]
        zf = c.get("feature_zero_fraction")
        print(f"| {label}{' (previous section)' if old else ''} | {c['lr']:g} | " + " | ".join(cells) +
              f" | {pct(last['accuracy'], last['ci95'])} | {pct(c['forgetting'], c['forgetting_ci95'])} | "
              f"{pct(last['oracle'], last['oracle_ci95'])} (lr {c['oracle_lr']:g}) | "
              f"{'n/a' if zf is None else f'{100 * zf:.0f}%'} |")


if __name__ == "__main__":
    table([("OML, the paper's meta-loss (`oml`)", "oml"),
           ("pretrain + online SGD (`pretrain`)", "pretrain"),
           ("scratch: the whole network online from a random start; oracle: the same i.i.d.", "whole"),
           ("random frozen representation + online head (`scratch`)", "scratch"),
           ("OML without replay (`oml-r0`)", "oml-r0")])
