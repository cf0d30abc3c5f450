#!/usr/bin/env bash
# Compares delayctl's fit with scikit-learn's on the same design matrix (not a CI step).
# Needs Debian's python3-sklearn: apt-get install -y python3-sklearn
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-out/sklearn-compare}
# SOLVER=newton-cg checks the Hessian-free solver that wide (crossed) designs use.
solver=${SOLVER:-}
# delayctl's fit time is the best of three runs, as scikit-learn's is the best of five.
for _ in 1 2 3; do go run ./scripts/sklearn-compare --out "$out.$_" ${solver:+--solver "$solver"} >/dev/null; done
best=$(for i in 1 2 3; do python3 -c "import json;print(json.load(open('$out.$i/delayctl.json'))['fit_seconds'])"; done | sort -g | head -1)
mkdir -p "$out"
cp "$out.1/design.csv" "$out/design.csv"
python3 - "$out.1/delayctl.json" "$best" > "$out/delayctl.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); d["fit_seconds"] = float(sys.argv[2]); print(json.dumps(d))
PY
rm -rf "$out".[123]
/usr/bin/python3 scripts/sklearn-compare/compare.py "$out"
