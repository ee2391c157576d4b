"""Naive per-sample reference implementations (numpy, explicit loops) of the defense losses,
written from the papers' equations independently of mia_bench.defenses, plus a
finite-difference gradient. Float64 throughout."""

from __future__ import annotations

import math

import numpy as np


def softmax_row(g):
    m = max(g)
    e = [math.exp(v - m) for v in g]
    s = sum(e)
    return [v / s for v in e]


def ce_row(g, y):
    return -math.log(softmax_row(g)[y])


def soft_label_row(p_y, y, c):
    return [p_y if k == y else (1.0 - p_y) / (c - 1) for k in range(c)]


def soft_ce_row(t, g):
    p = softmax_row(g)
    return -sum(t[k] * math.log(p[k]) for k in range(len(g)))


def relaxloss(logits, targets, alpha, epoch, upper=1.0, form="paper"):
    """RelaxLoss Algorithm 1 (epochs from 0) with the image form of App. B.3."""
    B, C = logits.shape
    ces = [ce_row(logits[i], targets[i]) for i in range(B)]
    L = sum(ces) / B
    if epoch % 2 == 0:
        return abs(L - alpha)
    if L > alpha:
        return L
    total = 0.0
    for i in range(B):
        g, y = list(logits[i]), int(targets[i])
        t = soft_label_row(min(softmax_row(g)[y], upper), y, C)
        if form == "image":
            correct = int(np.argmax(g)) == y
            total += (0.0 if correct else soft_ce_row(t, g)) - ces[i]
        else:
            total += soft_ce_row(t, g)
    return total / B


def ccl(logits, targets, variant, alpha, beta):
    B = len(targets)
    total = 0.0
    for i in range(B):
        ce = ce_row(logits[i], targets[i])
        p = softmax_row(logits[i])[targets[i]]
        concave = -math.exp(p) if variant == "ccel" else -p - p * p / 2
        total += alpha * ce + (1 - alpha) * concave
    return beta * total / B


def normalise_row(z, tau):
    n = math.sqrt(sum(v * v for v in z))
    return [v / (1 + tau * n) for v in z]


def imp_relax_loss(logits, targets, alpha_rce, tau_rce, epoch, upper=1.0, label_logits=None):
    """CRL Eq. 5-9; the soft label's p_y comes from `label_logits` when given (to hold it fixed
    in a finite difference), else from `logits`."""
    label_logits = logits if label_logits is None else label_logits
    B, C = logits.shape
    lce = sum(ce_row(normalise_row(logits[i], tau_rce), targets[i]) for i in range(B)) / B
    if epoch % 2 == 0:
        return abs(lce - alpha_rce)
    if lce > alpha_rce:
        return lce
    total = 0.0
    for i in range(B):
        y = int(targets[i])
        t = soft_label_row(min(softmax_row(label_logits[i])[y], upper), y, C)
        total += soft_ce_row(t, normalise_row(logits[i], tau_rce))
    return total / B


def relaxed_center_loss(
    features, centers, logits, targets, alpha_rcl, tau_rcl, epoch, upper_rcl=1.0
):
    """CRL Algorithm 1 lines 7-18."""
    B = len(targets)
    d, qq = [], []
    for i in range(B):
        q = normalise_row(features[i], tau_rcl)
        c = normalise_row(centers[targets[i]], tau_rcl)
        d.append(sum((a - b) ** 2 for a, b in zip(q, c)))
        qq.append(sum(a * a for a in q))
    D = sum(d) / (2 * B)
    if epoch % 2 == 0:
        return abs(D - alpha_rcl)
    if D > alpha_rcl:
        return D
    total = 0.0
    for i in range(B):
        w = min(softmax_row(logits[i])[targets[i]], upper_rcl)
        total += w * d[i] + (1 - w) * qq[i]
    return total / (2 * B)


def numeric_grad(f, x, eps=1e-6):
    """Central finite differences of scalar f at array x."""
    x = np.array(x, dtype=np.float64)
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        hi, lo = x.copy(), x.copy()
        hi[idx] += eps
        lo[idx] -= eps
        g[idx] = (f(hi) - f(lo)) / (2 * eps)
    return g
