#!/usr/bin/env python3
"""Refit delayctl's design with scikit-learn's LogisticRegression and compare.

Run through scripts/sklearn-compare.sh, which first writes out/sklearn-compare/design.csv and
delayctl.json. The objectives are the same problem: delayctl minimises
    mean log loss + lambda/2 * ||w||^2   (intercept unpenalised)
and scikit-learn minimises
    C * sum log loss + 1/2 * ||w||^2     (lbfgs leaves the intercept unpenalised)
so C = 1 / (lambda * n). Needs Debian's python3-sklearn (apt-get install python3-sklearn).
"""
import json
import sys
import time

import numpy as np
from sklearn.linear_model import LogisticRegression

d = sys.argv[1] if len(sys.argv) > 1 else "out/sklearn-compare"
ours = json.load(open(f"{d}/delayctl.json"))
design = np.loadtxt(f"{d}/design.csv", delimiter=",")
y, X = design[:, 0], design[:, 1:]
n = len(y)
C = 1.0 / (ours["l2"] * n)


def fit(solver):
    best, clf = None, None
    for _ in range(5):
        clf = LogisticRegression(C=C, solver=solver, tol=1e-12, max_iter=100000)
        t0 = time.perf_counter()
        clf.fit(X, y)
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    return clf, best


def objective(clf):
    p = np.clip(clf.predict_proba(X)[:, 1], 1e-15, 1 - 1e-15)
    return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)) + ours["l2"] / 2 * np.sum(clf.coef_[0] ** 2)


print(f"rows {n}, features {X.shape[1]}, C = 1/(lambda*n) = {C:.6g}")
print(f"delayctl ({ours['solver']}): {ours['fit_seconds']:.4f}s, {ours['iterations']} iterations, {ours['passes']} passes, "
      f"gradient norm {ours['gradient_norm']:.1e}, objective {ours['log_loss']:.10f}")
ok = True
for solver in ("newton-cholesky", "lbfgs"):
    clf, secs = fit(solver)
    coef_diff = max(np.max(np.abs(np.array(ours["coefficients"]) - clf.coef_[0])), abs(ours["intercept"] - clf.intercept_[0]))
    loss_diff = abs(ours["log_loss"] - objective(clf))
    print(f"scikit-learn {solver:16s} {secs:.4f}s (best of 5, {int(clf.n_iter_[0])} iterations): "
          f"max |coef diff| {coef_diff:.1e}, |objective diff| {loss_diff:.1e}, "
          f"time ratio sklearn/delayctl {secs / ours['fit_seconds']:.1f}x")
    if solver == "newton-cholesky":
        # The reference solver converges to the same unique optimum: hold it to the targets.
        ok = coef_diff < 1e-5 and loss_diff < 1e-6
print("targets (newton-cholesky): coefficients within 1e-5, objective within 1e-6:", "PASS" if ok else "FAIL")
print("(lbfgs stops on its own tolerance in the flat directions that one-hot blocks plus an intercept leave;"
      " its objective still agrees)")
sys.exit(0 if ok else 1)
