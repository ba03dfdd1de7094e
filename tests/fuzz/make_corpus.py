#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz harnesses: tests/fuzz/corpus/<target>/.

A handful of small valid files per target plus a few edge cases, built with
the Python standard library only, byte for byte the same on every run (zip
timestamps fixed), so `python3 tests/fuzz/make_corpus.py` regenerates exactly
what is committed. Files found by fuzzing (crashes fixed since, named
crash-*) are kept: this script only writes its own names."""
import gzip
import io
import json
import os
import struct
import sys
import zipfile
import zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- PNG -------------------------------------------------------------------------

def chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png(w, h, rows, color_type=0, depth=8, extra=b"", interlace=0):
    """rows: the raw scanlines, each already prefixed with its filter byte."""
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, interlace)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra +
            chunk(b"IDAT", zlib.compress(b"".join(rows), 9)) + chunk(b"IEND", b""))


def gray8(w, h, f):
    return png(w, h, [b"\x00" + bytes(f(x, y) for x in range(w)) for y in range(h)])


def bits1(w, h, f):
    rows = []
    for y in range(h):
        row = bytearray((w + 7) // 8)
        for x in range(w):
            if f(x, y):
                row[x // 8] |= 0x80 >> (x % 8)
        rows.append(b"\x00" + bytes(row))
    return png(w, h, rows, depth=1)


def stroke(x, y):  # white page, a dark diagonal stroke (Omniglot-like)
    return 0 if abs(x - y) < 2 else 255


PNGS = {
    "gray8_12x12.png": gray8(12, 12, stroke),
    "bits1_16x10.png": bits1(16, 10, lambda x, y: abs(x - y) >= 2),
    "rgb_5x3.png": png(5, 3, [b"\x01" + bytes((x * 40 + c * 20 + y) % 256 for x in range(5) for c in range(3))
                              for y in range(3)], color_type=2),
    "rgba_4x4.png": png(4, 4, [b"\x02" + bytes((x * 60, y * 60, 128, 255 - x * 60)[c] for x in range(4) for c in range(4))
                               for y in range(4)], color_type=6),
    "palette_3x2.png": png(3, 2, [b"\x00\x00\x01\x02", b"\x00\x02\x01\x00"], color_type=3,
                           extra=chunk(b"PLTE", bytes([255, 0, 0, 0, 255, 0, 0, 0, 255])) +
                           chunk(b"tRNS", bytes([255, 128, 0]))),
    "gray16_2x2.png": png(2, 2, [b"\x00\x00\x10\xff\xff", b"\x03\x80\x00\x01\x00"], depth=16),
    "gray2_7x3.png": png(7, 3, [b"\x00\x1b\x6c", b"\x04\xff\x00", b"\x00\x00\x00"], depth=2),
    "interlaced_1x1.png": png(1, 1, [b"\x00\x80"], interlace=1),
}


def write_png_corpus():
    for n, d in PNGS.items():
        put("png", n, d)
    put("png", "truncated.png", PNGS["gray8_12x12.png"][:40])
    put("png", "huge_header.png", png(100000, 100000, [b"\x00"]))  # refused from the header
    put("png", "not_png.bin", b"GIF89a\x01\x00\x01\x00")


# ---- zips (Omniglot, Lake, folders) ----------------------------------------------

def zipped(entries, method=zipfile.ZIP_DEFLATED):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", method) as z:
        for name, data in entries:
            zi = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            zi.compress_type = method
            zi.external_attr = 0o644 << 16
            z.writestr(zi, data)
    return b.getvalue()


def omniglot_entries(root="images_background", alphabets=("Greek", "Latin"), chars=2, per=2):
    e = []
    for a in alphabets:
        for c in range(1, chars + 1):
            for i in range(1, per + 1):
                e.append((f"{root}/{a}/character{c:02d}/{c:02d}{i:02d}_{i:02d}.png",
                          bits1(10, 10, lambda x, y, k=c + i: (x + y + k) % 5 == 0)))
    return e


def write_omniglot_corpus():
    put("omniglot_zip", "two_alphabets.zip", zipped(omniglot_entries()))
    put("omniglot_zip", "stored.zip", zipped(omniglot_entries(alphabets=("Korean",), chars=1), zipfile.ZIP_STORED))
    put("omniglot_zip", "mixed_png.zip", zipped([("A/character01/a.png", PNGS["rgb_5x3.png"]),
                                                 ("A/character01/b.png", PNGS["gray8_12x12.png"]),
                                                 ("A/character02/c.png", PNGS["palette_3x2.png"])]))
    put("omniglot_zip", "bad_name.zip", zipped([("flat.png", PNGS["gray8_12x12.png"])]))
    put("omniglot_zip", "not_png.zip", zipped([("A/character01/x.png", b"not a png")]))
    put("omniglot_zip", "empty_dir.zip", zipped([("A/character01/", b""), ("B/character01/y.png", PNGS["bits1_16x10.png"])]))
    put("omniglot_zip", "empty.zip", zipped([]))

    # Folders: the same zips unpacked by the harness, plus flat and labelled layouts.
    put("image_folder", "labelled.zip", zipped([("cats/a.png", PNGS["gray8_12x12.png"]), ("cats/b.png", PNGS["rgba_4x4.png"]),
                                                ("dogs/c.png", PNGS["bits1_16x10.png"]), ("dogs/notes.txt", b"hi")]))
    put("image_folder", "flat.zip", zipped([("a.png", PNGS["gray16_2x2.png"]), ("b.png", PNGS["gray2_7x3.png"])]))
    put("image_folder", "mixed_layout.zip", zipped([("a.png", PNGS["gray8_12x12.png"]), ("c/b.png", PNGS["gray8_12x12.png"])]))
    put("image_folder", "omniglot_tree.zip", zipped(omniglot_entries(alphabets=("Greek",))))
    put("image_folder", "empty_class.zip", zipped([("x/", b""), ("y/a.png", PNGS["gray8_12x12.png"])]))


def lake_zip(runs=2, n=3, labels=None):
    e = []
    for r in range(1, runs + 1):
        pre = f"all_runs/run{r:02d}"
        lines = labels if labels is not None else "".join(
            f"{pre}/test/item{i:02d}.png {pre}/training/class{(i * 2) % n + 1:02d}.png\n" for i in range(1, n + 1))
        e.append((f"{pre}/class_labels.txt", lines))
        for i in range(1, n + 1):
            e.append((f"{pre}/training/class{i:02d}.png", bits1(12, 12, lambda x, y, k=i: (x * k + y) % 7 == 0)))
            e.append((f"{pre}/test/item{i:02d}.png", bits1(12, 12, lambda x, y, k=i: (x + y * k) % 7 == 0)))
    return zipped(e)


def write_lake_corpus():
    put("lake", "two_runs.zip", lake_zip())
    put("lake", "one_run_crlf.zip", lake_zip(runs=1, n=2, labels="run01/test/item01.png run01/training/class02.png\r\n"
                                                            "run01/test/item02.png run01/training/class01.png\r\n"))
    put("lake", "bad_label.zip", lake_zip(runs=1, n=2, labels="item01.png class09.png\n"))
    put("lake", "no_runs.zip", zipped([("readme.txt", b"nothing here")]))


# ---- safetensors --------------------------------------------------------------------

def safetensors(tensors, meta=None, pad=True):
    """tensors: [(name, shape, floats)] laid out in order."""
    hdr, data, off = {}, b"", 0
    if meta is not None:
        hdr["__metadata__"] = meta
    for name, shape, vals in tensors:
        b = struct.pack(f"<{len(vals)}f", *vals)
        hdr[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + len(b)]}
        data += b
        off += len(b)
    h = json.dumps(hdr, separators=(",", ":")).encode()
    if pad:
        h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data


def write_safetensors_corpus():
    put("safetensors", "two.safetensors", safetensors([("w", [2, 3], [1, 2, 3, 4, 5, 6]), ("b", [3], [0.5, -1, 2])],
                                                      meta={"step": "42", "algo": "maml"}))
    put("safetensors", "scalar_empty.safetensors", safetensors([("s", [], [3.5]), ("e", [0, 4], [])]))
    put("safetensors", "nopad.safetensors", safetensors([("x", [1], [1.0])], pad=False))
    put("safetensors", "empty.safetensors", safetensors([], meta={}))
    h = b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'
    put("safetensors", "alias.safetensors", struct.pack("<Q", len(h)) + h + bytes(8))
    h = b'{"t":{"dtype":"BF16","shape":[1],"data_offsets":[0,2]}}'
    put("safetensors", "bf16.safetensors", struct.pack("<Q", len(h)) + h + bytes(2))
    put("safetensors", "short.safetensors", b"\x10\x00\x00")


# ---- IDX ------------------------------------------------------------------------------

def idx(dims, data):
    return struct.pack(">BBBB", 0, 0, 8, len(dims)) + b"".join(struct.pack(">I", d) for d in dims) + bytes(data)


SEP = b"\n--labels--\n"


def write_idx_corpus():
    imgs = idx([3, 2, 2], range(12))
    labels = idx([3], [0, 2, 1])
    put("idx", "images_plain", b"\x00" + imgs)
    put("idx", "images_gzip_by_harness", b"\x01" + imgs)
    put("idx", "labels_1d", b"\x00" + labels)
    put("idx", "pair_plain", b"\x00" + imgs + SEP + labels)
    put("idx", "pair_gzip_by_harness", b"\x01" + imgs + SEP + labels)
    put("idx", "real_gzip", b"\x00" + gzip.compress(imgs, mtime=0))
    put("idx", "pair_mismatch", b"\x00" + imgs + SEP + idx([2], [0, 1]))
    put("idx", "trailing", b"\x00" + idx([2], [0, 1]) + b"\x07")
    put("idx", "float_type", b"\x00" + struct.pack(">BBBB", 0, 0, 0x0d, 1) + struct.pack(">I", 1) + bytes(4))


# ---- CSV tasks --------------------------------------------------------------------------

def write_csv_corpus():
    put("csv_tasks", "plain.csv", "t1,support,0.5,1.0\nt1,query,1.5,2.0\nt2,support,-1,0\nt2,query,2,4\n")
    put("csv_tasks", "header_2d.csv", "task,split,x1,x2,y\na,support,1,2,3\na,support,2,3,5\na,query,0,1,1\n")
    put("csv_tasks", "quoted_crlf_bom.csv", '\ufeff"task ""one""",Support,1e-3,2\r\n"task ""one""",QUERY,-0.25,1\r\n\r\n')
    put("csv_tasks", "bad_split.csv", "a,train,1,2\n")
    put("csv_tasks", "ragged.csv", "a,support,1,2\na,query,1,2,3\n")
    put("csv_tasks", "nan.csv", "a,support,nan,2\na,query,1,inf\n")
    put("csv_tasks", "no_query.csv", "a,support,1,2\n")


def write_csv_numbers_corpus():
    put("csv_numbers", "xy.csv", "0.5,1.0\n1.5,2.0\n-1,0\n")
    put("csv_numbers", "header_3d.csv", "x1,x2,x3,y\n1,2,3,6\n2,3,4,9\n")
    put("csv_numbers", "quoted_crlf_bom.csv", '\ufeff"1e-3",2\r\n\r\n  -0.25 , "1"\r\n')
    put("csv_numbers", "ragged.csv", "1,2\n1,2,3\n")
    put("csv_numbers", "nan.csv", "nan,2\n1,inf\n")
    put("csv_numbers", "header_only.csv", "x,y\n")
    put("csv_numbers", "wide_then_blank.csv", ",".join(["1"] * 200) + "\n" + "\n" * 300)


# ---- split.json -------------------------------------------------------------------------

def write_task_split_corpus():
    split = {"format": "metalearn-task-split", "version": 1, "file": "tasks.csv",
             "train": ["a", "b", "c"], "val": ["d"], "test": ["e", "f"]}
    put("task_split", "split.json", json.dumps(split))
    put("task_split", "empty_parts.json", json.dumps(dict(split, train=["a"], val=[], test=[])))
    put("task_split", "unknown_task.json", json.dumps(dict(split, val=["zz"])))
    put("task_split", "twice.json", json.dumps(dict(split, test=["a"])))
    put("task_split", "not_string.json", json.dumps(dict(split, val=[3])))
    put("task_split", "wrong_format.json", json.dumps(dict(split, format="metalearn-split")))
    put("task_split", "missing_part.json", json.dumps({k: v for k, v in split.items() if k != "test"}))


def write_split_corpus():
    ok = {"format": "metalearn-class-split", "version": 1, "unit": "character",
          "train": [str(i) for i in range(8)], "val": ["8", "9"], "test": ["10", "11"]}
    put("split", "full.json", json.dumps(ok))
    put("split", "partial.json", json.dumps(dict(ok, train=["0", "3"], val=[], test=["11"])))
    put("split", "alphabet_unit.json", json.dumps(dict(ok, unit="alphabet")))
    put("split", "unknown_class.json", json.dumps(dict(ok, test=["12"])))
    put("split", "repeated.json", json.dumps(dict(ok, val=["0"])))
    put("split", "wrong_format.json", json.dumps(dict(ok, format="other", version=2)))
    put("split", "not_object.json", "[1, 2, 3]")


# ---- log.jsonl --------------------------------------------------------------------------

def write_log_corpus():
    lines = [json.dumps({"iter": i * 100, "loss": 2.0 / (i + 1), "seconds": i * 0.5, "lr": 0.001}) for i in range(1, 8)]
    put("plot_log", "log.jsonl", "\n".join(lines) + "\n")
    put("plot_log", "one_line.jsonl", '{"iter": 1, "loss": 0.5}\n')
    put("plot_log", "torn_tail.jsonl", "\n".join(lines[:3]) + '\n{"iter": 400, "lo')
    put("plot_log", "extreme.jsonl", '{"iter": 1e308, "loss": -1e308}\n{"iter": -5, "loss": 0}\n{"iter": 0, "loss": 1e-320}\n')
    put("plot_log", "val_fields.jsonl", '{"iter": 10, "loss": 1.0, "val_mse": 0.8}\n{"iter": 20, "loss": 0.9, "val_acc": 0.5}\n')
    put("plot_log", "blank_lines.jsonl", '\n\n{"iter": 3, "loss": 3}\n\n')


# ---- config.json ----------------------------------------------------------------------------

def write_config_corpus():
    put("config", "maml.json", json.dumps({"algo": "maml", "task": "sinusoid", "shots": 10, "meta-batch": 25,
                                           "inner-steps": 1, "inner-lr": 0.01, "outer-lr": 0.001, "iters": 100,
                                           "seed": "12345678901234567890", "json": True}))
    put("config", "fewshot.json", json.dumps({"algo": "protonet", "dataset": "omniglot:a.zip,b.zip", "ways": 5,
                                              "shots": 1, "query": 5, "split": "0.6,0.1,0.3", "rotations": 1,
                                              "augment-rotate": 15, "augment-scale": "0.9,1.1", "eval-shots": "1,5"}))
    put("config", "supervised.json", json.dumps({"algo": "supervised", "dataset": "fashion-mnist", "epochs": 1,
                                                 "optimizer": "sgd", "lr": 0.1, "schedule": None}))
    put("config", "unknown_key.json", json.dumps({"lr_inner": 0.1}))
    put("config", "bad_type.json", json.dumps({"shots": "ten"}))
    put("config", "repeated.json", '{"shots": 1, "shots": 2}')
    put("config", "empty.json", "{}")


# ---- search space ----------------------------------------------------------------------------

def write_space_corpus():
    put("search_space", "sinusoid.json", json.dumps({
        "base": {"algo": "maml", "task": "sinusoid"},
        "space": {"inner-lr": {"log_uniform": [0.001, 0.5]}, "inner-steps": {"int": [1, 5]},
                  "algo": {"choice": ["maml", "fomaml", "metasgd"]}, "augment-rotate": {"uniform": [0, 15]}}}))
    put("search_space", "bools_numbers.json", json.dumps({
        "base": {"algo": "protonet", "iters": 50},
        "space": {"rotations": {"choice": [0, 1]}, "json": {"choice": [True, False]},
                  "outer-lr": {"uniform": [0.0001, 0.01]}, "optimizer": {"choice": ["adam", "sgd"]}}}))
    put("search_space", "one_param.json", json.dumps({"space": {"algo": {"choice": ["reptile"]}}}))
    put("search_space", "bad_kind.json", json.dumps({"space": {"inner-lr": {"normal": [0, 1]}}}))
    put("search_space", "reserved.json", json.dumps({"space": {"out": {"choice": ["x"]}}}))
    put("search_space", "reversed.json", json.dumps({"base": {"algo": "maml"}, "space": {"shots": {"int": [5, 1]}}}))


# ---- federated messages (MPI transport) -------------------------------------------------------

def fed_msg(kind, name, shape, values=(), value=0.0, frm=-1, to=0, seq=0, numel=None):
    """A message of src/federated/wire.c (little endian) after 2 bytes of receiver room."""
    n = 1
    for s in shape:
        n *= s
    numel = (n if kind == 0 else 0) if numel is None else numel
    head = struct.pack("<IIiiI", 0x57464C4D, kind, frm, to, seq) + name.encode().ljust(64, b"\0")
    head += struct.pack("<i", len(shape)) + struct.pack("<4q", *(list(shape) + [0] * (4 - len(shape))))
    head += struct.pack("<qd", numel, value)
    return head + struct.pack(f"<{len(values)}f", *values)


def write_fed_wire_corpus():
    room = struct.pack("<H", 64)
    put("fed_wire", "tensor_2x3.bin", room + fed_msg(0, "layers.0.weight", [2, 3], [0.5 * i for i in range(6)]))
    put("fed_wire", "bias.bin", room + fed_msg(0, "layers.0.bias", [4], [1, 2, 3, 4], frm=2, to=-1, seq=7))
    put("fed_wire", "scalar_count.bin", room + fed_msg(1, "count", [], value=12.0, frm=0, to=-1, seq=1))
    put("fed_wire", "scalar_loss.bin", room + fed_msg(1, "loss", [], value=0.25, frm=3, to=-1, seq=2))
    put("fed_wire", "too_big.bin", struct.pack("<H", 2) + fed_msg(0, "w", [3], [1, 2, 3]))
    put("fed_wire", "short_payload.bin", room + fed_msg(0, "w", [3], [1, 2]))
    put("fed_wire", "numel_lies.bin", room + fed_msg(0, "w", [2, 2], [1, 2, 3, 4], numel=3))
    put("fed_wire", "truncated.bin", room + fed_msg(1, "loss", [], value=1.0)[:40])


def main():
    write_png_corpus()
    write_omniglot_corpus()
    write_lake_corpus()
    write_safetensors_corpus()
    write_idx_corpus()
    write_csv_corpus()
    write_csv_numbers_corpus()
    write_task_split_corpus()
    write_split_corpus()
    write_log_corpus()
    write_config_corpus()
    write_space_corpus()
    write_fed_wire_corpus()
    n = sum(len(fs) for _, _, fs in os.walk(ROOT))
    print(f"{n} seed files under {ROOT}", file=sys.stderr)


if __name__ == "__main__":
    main()
