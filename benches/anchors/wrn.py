#!/usr/bin/env python3
"""PyTorch eager anchor: WRN-40-2 training step and eval, on the CPU or a GPU.

The same network as dada-models' WRN-40-2 (pre-activation wide blocks, widths 16/32/64/128,
BatchNorm momentum 0.1, no dropout), SGD with momentum 0.9 and Nesterov, cross-entropy, on random
3x32x32 batches. Prints one JSON line per measure: images/s as min / median / max over repeats.

    python3 benches/anchors/wrn.py --device cpu --threads 2 --batch 128 --eval-batch 512
    python3 benches/anchors/wrn.py --device cuda --batch 128 --eval-batch 512
    python3 benches/anchors/wrn.py --measure eval    # only one of the two (default: step,eval)

Needs only `torch` (`pip install -r benches/anchors/requirements.txt`). Warm-up steps are not
timed; on CUDA every timing is synchronised.
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.shortcut = None
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Conv2d(c_in, c_out, 1, stride, 0, bias=False)

    def forward(self, x):
        o = F.relu(self.bn1(x))
        y = self.conv1(o)
        y = self.conv2(F.relu(self.bn2(y)))
        return y + (self.shortcut(o) if self.shortcut is not None else x)


class WRN(nn.Module):
    def __init__(self, depth=40, k=2, n_classes=10):
        super().__init__()
        n = (depth - 4) // 6
        widths = [16, 16 * k, 32 * k, 64 * k]
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        layers = []
        for g in range(3):
            for i in range(n):
                c_in = widths[g] if i == 0 else widths[g + 1]
                layers.append(Block(c_in, widths[g + 1], (1 if g == 0 else 2) if i == 0 else 1))
        self.blocks = nn.Sequential(*layers)
        self.bn = nn.BatchNorm2d(widths[3])
        self.fc = nn.Linear(widths[3], n_classes)

    def forward(self, x):
        x = self.blocks(self.conv1(x))
        x = F.relu(self.bn(x))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def timed(fn, reps, sync):
    times = []
    for _ in range(reps):
        sync()
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (CPU); 0 keeps the default")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--eval-batch", type=int, default=512)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--measure", default="step,eval", help="comma-separated: step, eval")
    a = ap.parse_args()
    measures = set(a.measure.split(","))
    if not measures or not measures <= {"step", "eval"}:
        ap.error(f"--measure {a.measure!r}: expected step, eval or step,eval")
    if a.threads:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    torch.manual_seed(0)
    model = WRN().to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=2e-4)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    x = torch.rand(a.batch, 3, 32, 32, device=dev)
    y = torch.randint(0, 10, (a.batch,), device=dev)
    xe = torch.rand(a.eval_batch, 3, 32, 32, device=dev)

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    def evaluate():
        with torch.no_grad():
            model(xe).argmax(1)

    rows = []
    if "step" in measures:
        model.train()
        timed(step, a.warmup, sync)
        rows.append(("wrn40_2_train_step", timed(step, a.reps, sync), a.batch))
    if "eval" in measures:
        model.eval()
        timed(evaluate, a.warmup, sync)
        rows.append(("wrn40_2_eval", timed(evaluate, a.reps, sync), a.eval_batch))
    for name, times, b in rows:
        ips = sorted(b / t for t in times)
        print(json.dumps({"anchor": "pytorch-eager", "torch": torch.__version__, "device": str(dev),
                          "threads": torch.get_num_threads(), "measure": name, "batch": b,
                          "images_per_s": {"min": ips[0], "median": statistics.median(ips), "max": ips[-1]}}))


if __name__ == "__main__":
    main()
