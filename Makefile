# mia_bench: `make help` lists the targets.
SHELL := /bin/bash
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch wheels pinned for reproducible numbers; override e.g. TORCH="torch==2.5.1 torchvision==0.20.1"
TORCH ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.installed
ARGS ?=
DIR ?=
PYTEST_ARGS ?=
BENCH_ARGS ?=

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[36m%-26s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

.PHONY: setup
setup: $(STAMP) ## Create .venv and install mia_bench with its dev tools

.PHONY: run
run: $(STAMP) ## Set-up (~3 min, 5.9 GB) + the default experiment on embedded data (CPU, ~9 s idle; 3 s cached)
	$(BIN)/python -m mia_bench $(ARGS)

.PHONY: report
report: $(STAMP) ## Tables + plots of run/sweep folders: make report DIR=outputs/multirun/<date>/<time>
	@test -n "$(DIR)" || { echo "usage: make report DIR=<run or sweep folder> [ARGS='--out X --select K=V']"; exit 2; }
	$(BIN)/python -m mia_bench.report $(DIR) $(ARGS)

.PHONY: sweep-embedded
sweep-embedded: $(STAMP) ## Early-stopping sweep on the embedded data (15 runs, CPU) + its report in experiments/sweep-embedded
	rm -rf outputs/sweep-embedded/latest
	$(BIN)/python -m mia_bench -m +experiment=sweep_embedded hydra.sweep.dir=outputs/sweep-embedded/latest
	$(BIN)/python -m mia_bench.report outputs/sweep-embedded/latest --out experiments/sweep-embedded

.PHONY: test
test: $(STAMP) ## Set-up + the fast test suite (~4.5 min on an idle 2-core machine, ~11 busy)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

.PHONY: test-slow
test-slow: $(STAMP) ## Every test, the slow ones included
	$(BIN)/python -m pytest -q -m "not gpu" $(PYTEST_ARGS)

.PHONY: lint
lint: $(STAMP) ## ruff lint + format check
	$(BIN)/ruff check mia_bench tests
	$(BIN)/ruff format --check mia_bench tests

.PHONY: format
format: $(STAMP) ## Apply ruff's formatting and safe fixes
	$(BIN)/ruff check --fix mia_bench tests
	$(BIN)/ruff format mia_bench tests

.PHONY: bench
bench: bench-gradnorms bench-train ## Every benchmark: per-sample gradient norms, then training speed

.PHONY: bench-gradnorms
bench-gradnorms: $(STAMP) ## Per-sample gradient norms, per-sample loop vs ours (CPU, a few minutes)
	$(BIN)/python -m mia_bench.bench.gradnorms $(BENCH_ARGS)

.PHONY: bench-train
bench-train: $(STAMP) ## Training speed (our trainer vs a DataLoader loop, stacked models, a RelaxLoss run); writes experiments/bench/
	$(BIN)/python -m mia_bench.bench --record experiments/bench $(ARGS)

.PHONY: bench-rates
bench-rates: $(STAMP) ## Training rate of every setting the paper targets train (GPU), then hours per target
	$(BIN)/python -m mia_bench.bench --parts e --record experiments/bench $(ARGS)
	$(BIN)/python -m mia_bench.repro.plan --rates $$(ls -t experiments/bench/rates-*.json | head -1)

# --- the papers' tables and figures (README: "Reproducing the papers") ---------------------
# SCALE=full: the papers' settings (needs the datasets; a GPU); runs in outputs/tables/<target>/,
# report + comparison in experiments/<target>/. SCALE=smoke: the same sweeps on fake files,
# one epoch, small subsets, on the CPU; everything in outputs/smoke/.
SCALE ?= full
SEEDS ?= 0,1,2
# basic | joblib | submitit_local | submitit_slurm | slurm | ray (hydra/launcher=...)
LAUNCHER ?= basic
# Parallel jobs of the joblib launcher (empty: the launcher's default).
JOBS ?=
REPRODUCE = $(BIN)/python -m mia_bench.repro.reproduce --scale $(SCALE) --seeds $(SEEDS) \
	--launcher $(LAUNCHER) $(if $(JOBS),--jobs $(JOBS))
PAPER_TARGETS := table-relaxloss table-relaxloss-adaptive figure-relaxloss-tradeoff \
	table-crl-cifar10 table-crl-cifar100 table-crl-svhn figure-ccl

.PHONY: $(PAPER_TARGETS) table-embedded tables
table-relaxloss: $(STAMP) ## RelaxLoss Tables 1/4/5 + Fig. 4: 7 dataset x model, with/without the defense, non-adaptive
	$(REPRODUCE) $@ $(ARGS)

table-relaxloss-adaptive: $(STAMP) ## RelaxLoss Table 6: the same defended models against adaptive attacks
	$(REPRODUCE) $@ $(ARGS)

figure-relaxloss-tradeoff: $(STAMP) ## RelaxLoss Fig. 3: every defense swept over its range, CIFAR-10/100 ResNet20
	$(REPRODUCE) $@ $(ARGS)

table-crl-cifar10: $(STAMP) ## CRL Table 1a: CE / AdvReg / RelaxLoss / CRL x VGG11, ResNet18, DenseNet121
	$(REPRODUCE) $@ $(ARGS)

table-crl-cifar100: $(STAMP) ## CRL Table 1b: CE / AdvReg / RelaxLoss / CRL x GoogLeNet, ResNet18, DenseNet121
	$(REPRODUCE) $@ $(ARGS)

table-crl-svhn: $(STAMP) ## CRL Table 1c: CE / AdvReg / RelaxLoss / CRL x VGG11, ResNet18
	$(REPRODUCE) $@ $(ARGS)

figure-ccl: $(STAMP) ## CCL: CE vs CCEL vs CCQL vs RelaxLoss privacy-utility on CIFAR-10 (qualitative)
	$(REPRODUCE) $@ $(ARGS)

# Embedded data, CPU: two local processes unless LAUNCHER / JOBS are given.
table-embedded: LAUNCHER := joblib
table-embedded: JOBS := 2
table-embedded: $(STAMP) ## Every defense x MLP (synthetic) / small CNN (digits), every attack, in RelaxLoss Table 1's layout
	$(REPRODUCE) $@ $(ARGS)

# Fashion-MNIST (the original idx files, see conf/dataset/fashion_mnist.yaml), CPU-sized: two
# local processes unless LAUNCHER / JOBS are given.
.PHONY: table-fashion-mnist
table-fashion-mnist: LAUNCHER := joblib
table-fashion-mnist: JOBS := 2
table-fashion-mnist: $(STAMP) ## Every defense and attack + RelaxLoss/CCL/CRL sweeps on Fashion-MNIST, small CNN (CPU; about 2 h for 3 seeds on a busy 2-core machine)
	$(REPRODUCE) $@ $(ARGS)

# Canary audit (Aerni, Zhang & Tramèr, CCS 2024): every defense at its default + DP-SGD over noise x
# clipping, embedded synthetic data, 3 seeds, adaptive LiRA; the report marks DP-SGD at matched utility.
# (early stopping runs apart: its snapshot epochs must fit in the audit's 30 epochs; DP-SGD's
# default, noise 1 / clipping 1, is a point of the DP-SGD sweep)
AUDIT_DEFENSES ?= none,relaxloss,label_smoothing,confidence_penalty,dropout,distillation,adv_reg,memguard,dmp,ccl,crl,hamp,selena,mixup_mmd
.PHONY: table-audit
table-audit: $(STAMP) ## Canary audit of every defense + DP-SGD at matched utility, embedded data (CPU); writes experiments/table-audit
	rm -rf outputs/table-audit
	$(BIN)/python -m mia_bench -m +experiment=audit_embedded defense=$(AUDIT_DEFENSES) \
		hydra/launcher=joblib hydra.launcher.n_jobs=2 hydra.sweep.dir=outputs/table-audit/defenses $(ARGS)
	$(BIN)/python -m mia_bench -m +experiment=audit_embedded defense=early_stopping \
		'defense.epochs=[5,10,20,30]' hydra/launcher=joblib hydra.launcher.n_jobs=2 \
		hydra.sweep.dir=outputs/table-audit/early_stopping $(ARGS)
	$(BIN)/python -m mia_bench -m +experiment=audit_dp_sgd_embedded \
		hydra/launcher=joblib hydra.launcher.n_jobs=2 hydra.sweep.dir=outputs/table-audit/dp_sgd $(ARGS)
	$(BIN)/python -m mia_bench.report outputs/table-audit --out experiments/table-audit

# The same audit on Fashion-MNIST at the record's CPU size (conf/experiment/audit_fashion_mnist.yaml),
# 3 seeds. No defense and MemGuard (which leaves training as it is) share the undefended models
# (shadow.defense=none); DP-SGD at two noise levels reuses them; every other defense gets the
# adaptive attacker (reference models trained with it). Early stopping is left out: the audit
# covers the final model, which is the undefended one.
AUDIT_FMNIST_DEFENSES ?= relaxloss,label_smoothing,confidence_penalty,dropout,distillation,adv_reg,dmp,ccl,crl,hamp,selena,mixup_mmd
.PHONY: table-audit-fashion-mnist
table-audit-fashion-mnist: $(STAMP) ## Canary audit of every defense on Fashion-MNIST, small CNN, 3 seeds (CPU, about 2 h); writes experiments/table-audit-fashion-mnist
	rm -rf outputs/audit-fashion-mnist
	$(BIN)/python -m mia_bench -m +experiment=audit_fashion_mnist defense=none,memguard shadow.defense=none \
		hydra.sweep.dir=outputs/audit-fashion-mnist/nonadaptive $(ARGS)
	$(BIN)/python -m mia_bench -m +experiment=audit_dp_sgd_fashion_mnist $(ARGS)
	$(BIN)/python -m mia_bench -m +experiment=audit_fashion_mnist defense=$(AUDIT_FMNIST_DEFENSES) $(ARGS)
	$(BIN)/python -m mia_bench.report outputs/audit-fashion-mnist --out experiments/table-audit-fashion-mnist

tables: $(PAPER_TARGETS) table-embedded table-fashion-mnist ## All of the above (make -j N runs N targets at once)

.PHONY: clean
clean: ## Remove run folders and caches (keeps .venv and the model cache)
	rm -rf outputs .pytest_cache .ruff_cache
