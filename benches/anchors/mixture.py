#!/usr/bin/env python3
"""Kornia anchor: the 15-op weighted mixture of DADA, forward + backward, on the CPU or a GPU.

What `benches/benchmarks/ops.rs` measures as `cpu_mixture/fused_fwd_bwd/paper`, written with
kornia's functional ops on PyTorch: `out = sum_k weights[:, k] * op_k(images, magnitudes)` over
the 15 ops of `OpSet::paper()` (dada-ops `weighted_mixture`). Batch 128 of 3x32x32 f32 images in
[0.05, 0.95]; one magnitude per image shared by the 15 ops (`(B,)`, in [0.05, 0.95]); weights
`(B, 15)`, a softmax of random logits; the random signs of the symmetric ops and the cutout
centres drawn once. Each timed repeat is the forward pass and the gradients w.r.t. images,
magnitudes and weights of a linear readout of the output, `sum_b <out_b, r>`
(`out.reshape(B, -1) @ r`, a fixed random `r`), as in ops.rs. Prints one JSON line: images/s as
min / median / max over repeats.

    python3 benches/anchors/mixture.py --device cpu --threads 2
    python3 benches/anchors/mixture.py --device cuda

The ops in order, with the parameter as in dada-ops (`param = sign * (low + m * (high - low))`)
and where kornia differs from ours:

- shear_x, shear_y: `geometry.transform.shear`, shear `sign * (-0.3 + 0.6 m)`.
- translate_x, translate_y: `geometry.transform.translate`, `sign * (-0.45 + 0.9 m) * W` pixels.
- rotate: `geometry.transform.rotate`, `sign * (-30 + 60 m)` degrees.
  The five geometric ops sample bilinearly (exact magnitude gradient); ours default to
  PIL-exact nearest sampling with a bilinear surrogate gradient (kornia's nearest mode has no
  magnitude gradient).
- auto_contrast: `enhance.normalize_min_max` (per channel; kornia adds 1e-6 to `max - min`).
- invert: `enhance.invert`.
- equalize: `enhance.equalize`. Its image gradient is zero in kornia: straight-through is added,
  as ours.
- solarize: `enhance.solarize`, threshold `256 m / 255`. No magnitude gradient in kornia:
  straight-through (ours: a sigmoid surrogate).
- posterize: `enhance.posterize`, bits `int(4 + 4 m)`. Zero image gradient and none for the
  bits in kornia: straight-through for both (ours: straight-through for the image, an
  expected-loss surrogate for the magnitude).
- contrast: `enhance.adjust_contrast_with_mean_subtraction`, factor `0.1 + 1.8 m`.
- color: `enhance.adjust_saturation_with_gray_subtraction`, factor `0.1 + 1.8 m`.
- brightness: `enhance.adjust_contrast`, factor `0.1 + 1.8 m` (kornia's multiplicative
  "contrast", `x * f` clamped, is PIL's Brightness; kornia's `adjust_brightness` adds).
- sharpness: `enhance.sharpness`, factor `0.1 + 1.8 m`.
- cutout: kornia has no functional cutout: `geometry.bbox.bbox_to_mask` and `torch.where`, as
  `augmentation.RandomErasing` does; side `0.2 m W` from `max(0, centre - side / 2)`, fill
  (125, 123, 114) / 255. No magnitude gradient: straight-through (ours: a soft-edge surrogate).

Forward values agree with ours: on a CIFAR-10 test image at m = 0.7, sign +1, the mean
|kornia - `cargo xtask augment`| is at most 1.2 / 255 per op (0 for invert, equalize, solarize
and posterize; the geometric ops against ours with `--interp bilinear`; cutout not compared, its
centres are drawn differently).

Straight-through is DADA's `out + m - m.detach()` (the magnitude gets the sum of the upstream
gradient); for the image, `x + (op(x) - x).detach()`, with `op(x)` computed without a graph.

Needs `torch` and `kornia` (`pip install -r benches/anchors/requirements.txt`). Warm-up
repeats are not timed; on CUDA every timing is synchronised.
"""
import argparse
import json
import statistics
import time

import torch

import kornia
import kornia.enhance as E
import kornia.geometry.transform as T
from kornia.geometry.bbox import bbox_generator, bbox_to_mask

CUTOUT_FILL = (125.0 / 255.0, 123.0 / 255.0, 114.0 / 255.0)


def param(m, low, high, sign=None):
    v = low + m * (high - low)
    return v if sign is None else sign * v


def straight_through_magnitude(out, m):
    """`out + m - m.detach()`, broadcast over (C, H, W)."""
    return out + (m - m.detach()).view(-1, 1, 1, 1)


def straight_through_image(x, op):
    """`op(x)` forward, identity gradient w.r.t. `x`."""
    with torch.no_grad():
        y = op(x)
    return x + (y - x.detach())


def paper_ops(b, h, w, device, gen):
    """The 15 ops of `OpSet::paper()` in order, each `f(images, magnitudes) -> images`, with the
    random parts (signs, cutout centres) drawn here, once, as `OpSet::sample_all` does."""

    def signs():
        return torch.where(torch.rand(b, generator=gen) < 0.5, -1.0, 1.0).to(device)

    s_shx, s_shy, s_tx, s_ty, s_rot = (signs() for _ in range(5))
    centres = torch.rand(b, 2, generator=gen).to(device)  # relative (y, x)
    zeros = torch.zeros(b, device=device)
    fill = torch.tensor(CUTOUT_FILL, device=device).view(1, 3, 1, 1)

    def shear_x(x, m):
        return T.shear(x, torch.stack([param(m, -0.3, 0.3, s_shx), zeros], 1))

    def shear_y(x, m):
        return T.shear(x, torch.stack([zeros, param(m, -0.3, 0.3, s_shy)], 1))

    def translate_x(x, m):
        return T.translate(x, torch.stack([param(m, -0.45, 0.45, s_tx) * w, zeros], 1))

    def translate_y(x, m):
        return T.translate(x, torch.stack([zeros, param(m, -0.45, 0.45, s_ty) * h], 1))

    def rotate(x, m):
        return T.rotate(x, param(m, -30.0, 30.0, s_rot))

    def auto_contrast(x, m):
        return E.normalize_min_max(x)

    def invert(x, m):
        return E.invert(x)

    def equalize(x, m):
        return straight_through_image(x, E.equalize)

    def solarize(x, m):
        out = E.solarize(x, thresholds=param(m.detach(), 0.0, 256.0 / 255.0))
        return straight_through_magnitude(out, m)

    def posterize(x, m):
        bits = param(m.detach(), 4.0, 8.0).floor().to(torch.int64)
        out = straight_through_image(x, lambda t: E.posterize(t, bits))
        return straight_through_magnitude(out, m)

    def contrast(x, m):
        return E.adjust_contrast_with_mean_subtraction(x, param(m, 0.1, 1.9))

    def color(x, m):
        return E.adjust_saturation_with_gray_subtraction(x, param(m, 0.1, 1.9))

    def brightness(x, m):
        return E.adjust_contrast(x, param(m, 0.1, 1.9))

    def sharpness(x, m):
        return E.sharpness(x, param(m, 0.1, 1.9))

    def cutout(x, m):
        side = param(m.detach(), 0.0, 0.2) * w
        x0 = (centres[:, 1] * w - side / 2).clamp(min=0).floor()
        y0 = (centres[:, 0] * h - side / 2).clamp(min=0).floor()
        side = side.floor()
        boxes = bbox_generator(x0, y0, side + 1, side + 1)
        mask = bbox_to_mask(boxes, w, h).unsqueeze(1)
        # A zero side draws nothing (PIL draws one pixel; ours: nothing below one pixel).
        mask = mask * (side > 0).to(x.dtype).view(-1, 1, 1, 1)
        return straight_through_magnitude(torch.where(mask == 1.0, fill, x), m)

    return [shear_x, shear_y, translate_x, translate_y, rotate, auto_contrast, invert, equalize,
            solarize, posterize, contrast, color, brightness, sharpness, cutout]


def weighted_mixture(ops, images, magnitudes, weights):
    b = images.shape[0]
    out = None
    for k, op in enumerate(ops):
        term = op(images, magnitudes) * weights[:, k].view(b, 1, 1, 1)
        out = term if out is None else out + term
    return out


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
    ap.add_argument("--threads", type=int, default=0,
                    help="torch.set_num_threads (CPU); 0 keeps the default")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--size", type=int, default=32, help="image height and width")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    gen = torch.Generator().manual_seed(0)
    b, h, w = a.batch, a.size, a.size
    n = 3 * h * w
    ops = paper_ops(b, h, w, dev, gen)
    images = (0.05 + 0.9 * torch.rand(b, 3, h, w, generator=gen)).to(dev).requires_grad_()
    magnitudes = (0.05 + 0.9 * torch.rand(b, generator=gen)).to(dev).requires_grad_()
    weights = torch.randn(b, len(ops), generator=gen).softmax(1).to(dev).requires_grad_()
    readout = (2 * torch.rand(n, 1, generator=gen) - 1).to(dev)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    def step():
        out = weighted_mixture(ops, images, magnitudes, weights)
        loss = (out.reshape(b, n) @ readout).sum()
        torch.autograd.grad(loss, [images, magnitudes, weights])

    timed(step, a.warmup, sync)
    ips = sorted(b / t for t in timed(step, a.reps, sync))
    print(json.dumps({"anchor": "kornia", "torch": torch.__version__, "kornia": kornia.__version__,
                      "device": str(dev), "threads": torch.get_num_threads(),
                      "measure": "mixture_paper_fwd_bwd", "batch": b,
                      "images_per_s": {"min": ips[0], "median": statistics.median(ips),
                                       "max": ips[-1]}}))


if __name__ == "__main__":
    main()
