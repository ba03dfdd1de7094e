"""Strategy search (metalearn/search.h): the library's driver, trials in
child processes, successive halving, the trial log and resume, best.json;
what `metalearn search` runs.

    summary = metalearn.search.run(space="space.json", out="runs/search", budget=9,
                                   strategy="evolution", min_iters=200, max_iters=1800)
    summary["best"]["settings"]      # {"inner-lr": 0.0123, ...}; runs/search/best.json"""
import ctypes as C
import json
import math
import os
import threading

from . import _lib as L


def _result(r):
    d = {f[0]: getattr(r, f[0]) for f in L.SearchResult._fields_}
    for k in ("message", "settings", "summary"):
        d[k] = d[k].decode() if d[k] else None
    d["settings"] = json.loads(d["settings"]) if d["settings"] else None
    if math.isnan(d["score"]):
        d["score"] = None
    return d


def run(space=None, out=None, budget=None, callback=None, space_json=None, **options):
    """Runs (or resumes) a search. space: a space file ({"base": {...},
    "space": {...}}), or space_json a dict of the same; options are
    `metalearn search`'s (strategy, min_iters, max_iters, eta, population,
    jobs, threads, val_tasks, seed, config). callback(event) sees progress
    (a dict: kind, rung, trial, done, total, ok, score, ...). Ctrl-C stops
    the trials (they checkpoint), then raises KeyboardInterrupt; the same
    call later continues. Returns the ranking: {"metric", "rungs",
    "results" (best first), "best", "failed", "seconds"}. Under mpirun
    every process calls run() alike and the trials spread over them:
    rank 0 gets the ranking and the callbacks (each trial_done event has
    the "rank" that ran it), the others an empty "results"."""
    if not L.HAVE_SEARCH:
        raise L.Error("this libmetalearn has no search driver (ml_search_run): rebuild it")
    cfg, err = L.SearchConfig(), L.errbuf()
    L.lib.ml_search_config_default(C.byref(cfg))
    s = L.lib.ml_search_config_option_set(C.byref(cfg))
    settings = dict(options, space=space, out=out, budget=budget)
    for name, value in settings.items():
        if value is None:
            continue
        text = os.fspath(value) if hasattr(value, "__fspath__") else str(value)
        if "\0" in text:  # C would see the text cut at the NUL
            raise ValueError(f"{name}: embedded null character in {text!r}")
        if L.lib.ml_options_set(C.byref(s), name.replace("_", "-").encode(), text.encode(), err, L.ERRLEN):
            raise L.Error(err.value.decode())
    keep = None
    if space_json is not None:
        try:  # NaN / Inf bounds would be written as tokens JSON has not
            keep = json.dumps(space_json, allow_nan=False).encode()
        except (TypeError, ValueError) as e:
            raise L.Error(f"space_json: {e}") from None
        cfg.space_text = keep
    stop = C.c_int(0)
    state = {"exc": None}

    def report(e, user):
        try:
            if state["exc"] is None and callback is not None:
                ev = e.contents
                d = {f[0]: getattr(ev, f[0]) for f in L.SearchEvent._fields_ if f[0] not in ("config", "rungs")}
                d["kind"] = L.SEARCH_EVENTS[ev.kind] if 0 <= ev.kind < len(L.SEARCH_EVENTS) else ev.kind
                d["rungs"] = [ev.rungs[i] for i in range(ev.n_rungs)] if ev.rungs else []
                for k in ("metric", "message"):
                    d[k] = d[k].decode() if d[k] else None
                callback(d)
        except BaseException as x:  # KeyboardInterrupt included: stop the trials, raise below
            state["exc"] = x
            stop.value = 1

    # The driver runs on a helper thread so that Ctrl-C reaches this one at
    # once (Python handles signals on the main thread, between calls) and
    # sets the library's stop flag: the trials checkpoint, nothing
    # unfinished is logged, and the same call later continues.
    summary, box = L.SearchSummary(), {}
    fn = L.SEARCH_REPORT(report)

    done = threading.Event()

    def drive():
        try:
            box["status"] = L.lib.ml_search_run(C.byref(cfg), None, fn, None, C.byref(stop), C.byref(summary),
                                                err, L.ERRLEN)
        finally:
            done.set()

    worker = threading.Thread(target=drive, name="metalearn-search")
    try:
        worker.start()
        # Wait on an Event, not join(): a KeyboardInterrupt inside join()
        # can leave is_alive() false while the thread still runs.
        while not done.is_set():
            try:
                done.wait(0.2)
            except KeyboardInterrupt as x:
                stop.value = 1
                state["exc"] = state["exc"] or x
        worker.join()
        st = box["status"]
        if state["exc"] is not None:
            raise state["exc"]
        L.check(st, err)
        results = [_result(summary.results[summary.order[i]]) for i in range(summary.budget)]
        return {"metric": summary.metric.decode() if summary.metric else None,
                "higher_better": bool(summary.higher_better),
                "rungs": [summary.rungs[i] for i in range(summary.n_rungs)], "results": results,
                "best": results[0] if results and results[0]["failed_rung"] < 0 else None,
                "failed": [r for r in results if r["failed_rung"] >= 0], "seconds": summary.seconds}
    finally:
        if worker.is_alive():  # an exception other than Ctrl-C above: still stop cleanly
            stop.value = 1
            done.wait()
            worker.join()
        L.lib.ml_search_summary_free(C.byref(summary))
