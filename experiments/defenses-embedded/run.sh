#!/usr/bin/env bash
# Privacy-utility comparison of the baseline defenses on the embedded default
# (synthetic data, MLP, 60 epochs, adaptive attacker: shadows trained with the same defense).
# One Hydra multirun per defense over the sweep of its conf/defense/<name>.yaml (fewer points
# where a run is costly), then one table of every point. Run from the repository root:
#   bash experiments/defenses-embedded/run.sh
set -euo pipefail
OUT=${OUT:-outputs/defenses-embedded}
PY=${PYTHON:-python}

sweep() {
  local name=$1
  shift
  "$PY" -m mia_bench -m progress=false hydra.sweep.dir="$OUT/$name" "defense=$name" "$@"
}

sweep none
sweep label_smoothing defense.epsilon=0.1,0.3,0.5,0.7,0.9
sweep confidence_penalty defense.a=0.5,1.0,2.0,4.0,8.0
sweep dropout defense.rate=0.1,0.3,0.5,0.7,0.9
sweep early_stopping
sweep distillation defense.temperature=1,5,20,100
sweep dp_sgd defense.noise_multiplier=0.1,0.5,1.0,2.0
sweep adv_reg defense.lam=0.8,1.2,1.8
sweep memguard defense.budget=0,0.1,0.3,1.0,2.0
sweep dmp defense.select_fraction=0.1,0.5,1.0
# The defenses of the three papers (their configs: conf/defense/relaxloss.yaml, ccl.yaml,
# crl.yaml; CCL at beta 1, which its config recommends for this trainer, beta 0.05 underfits).
sweep relaxloss defense.alpha=0.25,0.5,1.0,1.5,2.0
sweep ccl defense.beta=1.0 defense.alpha=0.2,0.5,0.8
sweep crl defense.alpha_rce=0.5,1.0

"$PY" experiments/defenses-embedded/table.py "$OUT" > experiments/defenses-embedded/results.md
