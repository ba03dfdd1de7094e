#!/usr/bin/env python3
"""Writes the crafted inputs of the round-12 readers audit (data30) into DIR
(default build-probe/f): huge declared sizes, lying zip entries, wide or
blank-line CSVs, deep JSON, gzip bombs, folder tricks. probe.sh runs them."""
import gzip, io, json, os, struct, sys, zipfile, zlib

D = sys.argv[1] if len(sys.argv) > 1 else "build-probe/f"
os.makedirs(D, exist_ok=True)
def w(name, data):
    path = os.path.join(D, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
def png(wd, ht, depth=8, ctype=0, rowbytes=None, rows=None):
    co = zlib.compressobj(9)
    rb = rowbytes if rowbytes is not None else wd
    body = b"".join(co.compress(bytes(1 + rb)) for _ in range(min(ht, rows or ht))) + co.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", wd, ht, depth, ctype, 0, 0, 0)) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
small = png(28, 28)
big = png(65535, 65535, rows=16)                 # IHDR 65535x65535, 16 rows of data
bomb16 = png(4096, 4096, 16, 6, 4096 * 8)        # 16M RGBA16 pixels (the default limit) in 130 kB

# CSV: a wide first line then blank lines; one 20 MB number; 10M blank lines
cols = 100000
w("csv_wide_blank.csv", "t,support," + ",".join(["1"] * (cols - 2)) + "\n" + "\n" * 1000000)
w("num_wide_blank.csv", ",".join(["1"] * cols) + "\n" + "\n" * 1000000)
w("csv_blank10m.csv", "t,support,1,2\nt,query,1,2\n" + "\n" * 10000000)
w("csv_longline.csv", b"t,support," + b"1" * 20000000 + b",2\n")
w("q.csv", "1,2\n3,4\n")
# JSON nesting 100000 deep
w("deep.json", "[" * 100000 + "]" * 100000)
w("deep_obj.json", '{"a":' * 100000 + "1" + "}" * 100000)
# safetensors: header length huge / beyond the file, shapes huge, 20000 tensors aliasing one region
w("st_hdrlen.safetensors", struct.pack("<Q", 1 << 62) + b"{}")
w("st_hdrlen2.safetensors", struct.pack("<Q", 100000000) + b"{}")
for name, shape in (("st_shape", [10**9, 10**9]), ("st_shape2", [1 << 31, 1 << 31, 16])):
    h = json.dumps({"w": {"dtype": "F32", "shape": shape, "data_offsets": [0, 4]}}).encode()
    w(name + ".safetensors", struct.pack("<Q", len(h)) + h + bytes(4))
h = json.dumps({f"t{i}": {"dtype": "F32", "shape": [1000000], "data_offsets": [0, 4000000]} for i in range(20000)}).encode()
w("st_alias.safetensors", struct.pack("<Q", len(h)) + h + bytes(4000000))
# IDX: 2^32-1 images declared in 116 bytes; a 1 MB gzip inflating to 1 GB with 10 labels
w("idx_huge/train-images-idx3-ubyte", struct.pack(">IIII", 0x803, 0xFFFFFFFF, 28, 28) + bytes(100))
w("idx_huge/train-labels-idx1-ubyte", struct.pack(">II", 0x801, 0xFFFFFFFF) + bytes(100))
n = 1300000
co = zlib.compressobj(9, zlib.DEFLATED, 31)
parts, left, zeros = [co.compress(struct.pack(">IIII", 0x803, n, 28, 28))], n * 784, bytes(1 << 20)
while left > 0:
    parts.append(co.compress(zeros[:min(left, len(zeros))])); left -= len(zeros)
parts.append(co.flush())
w("idx_gzbomb/train-images-idx3-ubyte.gz", b"".join(parts))
w("idx_gzbomb/train-labels-idx1-ubyte.gz", gzip.compress(struct.pack(">II", 0x801, 10) + bytes(range(10)), mtime=0))
# Omniglot-like zips: fine, a 65535x65535 PNG, a 200 MB entry, entries whose declared size lies
ents = [(f"images_background/Alpha{a}/character{c:02d}/{a}{c}{i}.png", small) for a in range(2) for c in range(3) for i in range(2)]
def zipped(entries):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
        for nm, data in entries:
            z.writestr(zipfile.ZipInfo(nm, (2020, 1, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)
    return bytearray(b.getvalue())
w("omni_ok.zip", bytes(zipped(ents)))
w("omni_bigpng.zip", bytes(zipped(ents + [("images_background/Alpha0/character00/zz.png", big)])))
w("omni_bomb.zip", bytes(zipped(ents + [("images_background/Alpha0/character00/bomb.png", bytes(200000000))])))
liar = b"images_background/Alpha0/character00/liar.png"
for name, size in (("omni_liar.zip", 1000), ("omni_hugedecl.zip", 0xFFFFFFF0)):
    data = zipped(ents + [(liar.decode(), bytes(50000000))])
    i = data.find(b"PK\x01\x02")
    while i >= 0:
        nl = struct.unpack("<H", data[i + 28:i + 30])[0]
        if data[i + 46:i + 46 + nl] == liar:
            struct.pack_into("<I", data, i + 24, size)
        i = data.find(b"PK\x01\x02", i + 4)
    w(name, bytes(data))
w("omni_trunc.zip", bytes(zipped(ents))[:1500])
# image folders for predict
w("sup/a/1.png", small); w("sup/b/1.png", small); w("qry/1.png", small)
w("supbig/a/1.png", big); w("supbig/b/1.png", small)
w("bigpng/a/1.png", bomb16); w("bigpng/b/1.png", bomb16); w("q16/1.png", bomb16)
w("lp/a/1.png", small); w("lp/b/1.png", small)
if not os.path.lexists(os.path.join(D, "lp/a/up")):
    os.symlink("..", os.path.join(D, "lp/a/up"))          # a folder loop
for a, b in (("loop1", "loop2"), ("loop2", "loop1")):
    if not os.path.lexists(os.path.join(D, a)):
        os.symlink(b, os.path.join(D, a))                  # a symlink loop
