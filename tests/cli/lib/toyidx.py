"""toyidx.py DIR [SEED NOISE BRIGHT]: a learnable toy IDX folder (gzip,
MNIST layout, 16x16, 4 classes): class k has a 3x3 square of pixels in
[BRIGHT, 250) at position k over noise in [0, NOISE).
256 training and 64 test images; the same bytes for the same arguments.
Used by tests/cli/train_idx.sh, supervised_eval.sh and tests/mpi/supervised.sh."""
import gzip, os, random, struct, sys

d = sys.argv[1]
seed, noise, bright = (int(a) for a in (sys.argv[2:5] if len(sys.argv) > 4 else (0, 40, 200)))
os.makedirs(d, exist_ok=True)
random.seed(seed)


def write(split, n):
    imgs, labels = bytearray(), bytearray()
    for i in range(n):
        k = i % 4
        img = bytearray(random.randrange(noise) for _ in range(256))
        r, c = (k // 2) * 8 + 2, (k % 2) * 8 + 2
        for dr in range(3):
            for dc in range(3):
                img[(r + dr) * 16 + c + dc] = bright + random.randrange(250 - bright)
        imgs += img
        labels.append(k)
    with gzip.open(f"{d}/{split}-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, 16, 16) + imgs)
    with gzip.open(f"{d}/{split}-labels-idx1-ubyte.gz", "wb") as f:
        f.write(struct.pack(">II", 0x801, n) + labels)


write("train", 256)
write("t10k", 64)
