"""The ctypes structs of metalearn/_lib.py mirror the C headers: every field's
offset and every struct's size, as the C compiler lays them out (so a field
added to a header without the Python side fails here, not as a crash)."""
import shutil
import subprocess

import pytest

from conftest import REPO
from metalearn import _lib as L
from metalearn import rl as RL

STRUCTS = {"ml_rng": L.Rng, "ml_progress": L.Progress, "ml_st_tensor": L.StTensor, "ml_st_entry": L.StEntry,
           "ml_safetensors": L.Safetensors, "ml_image_options": L.ImageOptions, "ml_image_set": L.ImageSet,
           "ml_class_ref": L.ClassRef, "ml_class_list": L.ClassList, "ml_split_spec": L.SplitSpec,
           "ml_class_split": L.ClassSplit, "ml_augment": L.Augment, "ml_episode": L.Episode,
           "ml_csv_task": L.CsvTask, "ml_task_family": L.TaskFamily, "ml_regression_task": L.RegressionTask,
           "ml_tensor": L.Tensor, "ml_model_spec": L.ModelSpec, "ml_param_info": L.ParamInfo, "ml_model": L.Model,
           "ml_option": L.Option, "ml_option_set": L.OptionSet, "ml_optim_config": L.OptimConfig,
           "ml_optim": L.Optim, "ml_meta_config": L.MetaConfig, "ml_meta": L.Meta, "ml_task_data": L.TaskData,
           "ml_run_config": L.RunConfigFields, "ml_search_config": L.SearchConfig,
           "ml_search_result": L.SearchResult, "ml_search_summary": L.SearchSummary,
           "ml_search_event": L.SearchEvent, "ml_meta_tensor": L.MetaTensor,
           "ml_continual_options": L.ContinualOptions, "ml_continual_row": L.ContinualRow,
           "ml_continual_result": L.ContinualResult,
           "ml_rl_config": RL.RlConfig, "ml_rl_stats": RL.RlStats}


def test_structs_match_the_headers(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        pytest.skip("no C compiler")
    lines = ["#include <stdio.h>", "#include <stddef.h>"]
    lines += [f'#include "metalearn/{h}"' for h in ("core.h", "io.h", "images.h", "tasks.h", "nn.h", "run.h", "meta.h", "search.h", "continual.h", "rl.h")]
    lines.append("int main(void) {")
    want = []
    for cname, cls in STRUCTS.items():
        lines.append(f'printf("%zu\\n", sizeof({cname}));')
        want.append(f"{cname} size {C_sizeof(cls)}")
        for f in cls._fields_:
            lines.append(f'printf("%zu\\n", offsetof({cname}, {f[0]}));')
            want.append(f"{cname}.{f[0]} offset {getattr(cls, f[0]).offset}")
    # ml_run_config is opaque to the package: a buffer of RUN_CONFIG_BYTES must hold it.
    lines.append(f'printf("%d\\n", (int)(sizeof(ml_run_config) <= {L.RUN_CONFIG_BYTES}));')
    want.append("ml_run_config fits 1")
    lines.append("return 0; }")
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines))
    subprocess.run([cc, "-std=c11", "-I", str(REPO / "include"), str(src), "-o", str(tmp_path / "layout")],
                   check=True)
    got = subprocess.run([str(tmp_path / "layout")], check=True, capture_output=True, text=True).stdout.split()
    got = [f"{w.rsplit(' ', 1)[0]} {g}" for w, g in zip(want, got)]
    assert got == want


def C_sizeof(cls):
    import ctypes
    return ctypes.sizeof(cls)
