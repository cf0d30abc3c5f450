#!/usr/bin/env python3
"""The scikit-learn pipeline a data scientist would write for `delayctl train`'s job.

Reads a BTS-layout CSV (pandas, only the needed columns), drops cancelled and diverted
flights and rows without ARR_DEL15, derives the same eight features (month, day of month,
day of week, week of year, departure hour, origin, dest, carrier), one-hot encodes them
sparsely, holds out a stratified 20 %, fits LogisticRegression at delayctl's
C = 1/(lambda * n_train) and scores ROC AUC on the held-out rows. scripts/perf-train.sh runs
it under /usr/bin/time -v beside `delayctl train` on the same file.
Usage: perf-train-sklearn.py FILE.csv [lambda]
"""
import sys
import time

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import OneHotEncoder

path = sys.argv[1]
lam = float(sys.argv[2]) if len(sys.argv) > 2 else 1e-4
t0 = time.perf_counter()
cols = ["MONTH", "DAY_OF_MONTH", "DAY_OF_WEEK", "UNIQUE_CARRIER", "ORIGIN", "DEST", "CRS_DEP_TIME",
        "ARR_DEL15", "CANCELLED", "DIVERTED"]
df = pd.read_csv(path, usecols=cols, dtype={"UNIQUE_CARRIER": "category", "ORIGIN": "category", "DEST": "category"})
df = df[(df.CANCELLED != 1) & (df.DIVERTED != 1)].dropna(subset=["ARR_DEL15"])
days_before = np.cumsum([0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30])
doy = days_before[df.MONTH.to_numpy() - 1] + df.DAY_OF_MONTH.to_numpy()
X = pd.DataFrame({
    "month": df.MONTH, "day_of_month": df.DAY_OF_MONTH, "day_of_week": df.DAY_OF_WEEK,
    "week_of_year": (doy - 1) // 7 + 1, "dep_hour": (df.CRS_DEP_TIME // 100) % 24,
    "origin": df.ORIGIN, "dest": df.DEST, "carrier": df.UNIQUE_CARRIER,
})
y = df.ARR_DEL15.to_numpy().astype(int)
del df
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, stratify=y, random_state=42)
enc = OneHotEncoder(handle_unknown="ignore")
Xtr = enc.fit_transform(X_train)
t_fit = time.perf_counter()
clf = LogisticRegression(C=1.0 / (lam * len(y_train)), solver="lbfgs", max_iter=1000)
clf.fit(Xtr, y_train)
fit_s = time.perf_counter() - t_fit
auc = roc_auc_score(y_test, clf.predict_proba(enc.transform(X_test))[:, 1])
print(f"scikit-learn: {len(y)} rows, {Xtr.shape[1]} features, fit {fit_s:.1f}s "
      f"({int(clf.n_iter_[0])} lbfgs iterations), total {time.perf_counter() - t0:.1f}s, roc_auc {auc:.4f}")
