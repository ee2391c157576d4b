"""One experiment, top to bottom, following the RelaxLoss protocol (Chen et al. 2022, Sec. 6.1):

1. load the dataset as tensors and cut the split (saved as split.npz);
2. train the target on target-train and each shadow on its shadow-train set, with the target's
   defense (adaptive attacker, `shadow.defense=same`) or without (`none`); models come from the
   cache when an identical one was trained before;
3. compute signals (logits, and the gradient norms that a selected attack needs) of each
   shadow on its own members / non-members and of the target on target-train (members) /
   target-test (non-members);
3b. if LiRA / RMIA are selected: train the reference models on random halves of the
   population (mia_bench/experiment/reference.py) and add each audited model's population view;
4. every attack fits on the shadow signals and scores the target's queries;
5. metrics -> results.json, scores.npz, summary.md.

Defenses hook in without the protocol knowing which one runs: each model's defense gets a
`DefenseContext` (reference fold, teachers through the cache; `defense_context.py`) and an
`after_training` call once the model is final; a defense with `snapshot_epochs` (early
stopping) has every snapshot evaluated as one more point (`checkpoints.py`); attacks that
need a signal the target's defense blocks are reported as not applicable.
"""

from __future__ import annotations

import json
import logging
import platform
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from mia_bench import __version__
from mia_bench.attacks import build_attacks
from mia_bench.audit.canaries import Canaries, audit_settings, plant
from mia_bench.audit.results import audit_results, most_vulnerable
from mia_bench.cache import ModelCache, attack_outputs, indices_digest
from mia_bench.data import TensorData, content_key, load_dataset
from mia_bench.data.population import population_indices
from mia_bench.data.splits import Split, check_query_sets, make_split
from mia_bench.data.transforms import Preprocess
from mia_bench.defenses import NO_DEFENSE, Defense, build
from mia_bench.errors import ConfigError
from mia_bench.experiment.defense_context import (
    auxiliary_models,
    build_context,
    check_defense,
    training_config,
    trains_alone,
)
from mia_bench.experiment.reference import ReferenceModels, reference_model_count
from mia_bench.experiment.snapshots import (
    accuracies,
    evaluate_checkpoints,
    not_applicable,
    target_summary,
)
from mia_bench.experiment.summary import format_summary
from mia_bench.experiment.trained import TrainedModel, derive_seed
from mia_bench.io import atomic_write_json, atomic_write_npz, atomic_write_text
from mia_bench.metrics import attack_metrics, min_queries
from mia_bench.models import Classifier, build_model, source_digest
from mia_bench.signals.compute import PopulationView, Signals, compute_signals
from mia_bench.signals.logits import predict_logits
from mia_bench.train.loop import train_model, trainer_identity
from mia_bench.train.resume import Checkpointer


class Stages:
    """Wall-clock seconds per named stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str):
        t0 = time.perf_counter()
        yield
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _container(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if node is not None else None


class Experiment:
    """Holds what every stage needs; `run()` executes the protocol above."""

    def __init__(self, cfg: DictConfig, output_dir: str | Path) -> None:
        self.cfg = cfg
        self.out = Path(output_dir)
        self.stages = Stages()
        self.device = resolve_device(cfg.device)
        self.cache = ModelCache(cfg.paths.cache_dir, enabled=bool(cfg.get("cache", True)))
        self.attack_cache = ModelCache(
            cfg.paths.cache_dir, enabled=bool(cfg.get("cache", True)), kind="attacks"
        )
        self.progress = bool(cfg.get("progress", True))
        # (role, defense config) -> teacher model, filled by `DefenseContext.teacher`
        self.teachers: dict[tuple[str, str], TrainedModel] = {}
        # attack result name -> why the target's defense cannot be attacked by it
        self.not_applicable: dict[str, str] = {}
        # LiRA / RMIA reference models, trained by `reference_models` when selected
        self.refs: ReferenceModels | None = None
        self.needs: frozenset[str] = frozenset()
        self.num_reference: int | None = None
        self.views: dict = {}
        # `audit=canaries`: the planted canaries (mia_bench/audit/canaries.py), else None
        self.canaries: Canaries | None = None

    # -- set-up: everything that can fail on bad input happens here, before training ------
    def prepare(self) -> None:
        cfg = self.cfg
        check_writable(self.out)
        with self.stages("data"):
            self.data: TensorData = load_dataset(cfg.dataset, cfg.paths.data_dir)
        if self.data.num_classes < 2:
            key = "dataset.n_classes" if "n_classes" in cfg.dataset else "dataset"
            raise ConfigError(key, f"needs at least 2 classes, got {self.data.num_classes}")
        aug = cfg.dataset.get("augment") or {}
        self.preprocess = Preprocess(
            self.data.kind,
            self.data.mean,
            self.data.std,
            crop_padding=int(aug.get("crop_padding", 0)),
            flip=bool(aug.get("flip", False)),
        )
        self.split: Split = make_split(
            len(self.data), self.data.kind, cfg.split, cfg.seed, int(cfg.shadow.count)
        )
        self.audit = audit_settings(cfg)
        if self.audit is not None:
            if int(cfg.trainer.get("stack", 1)) > 1:
                raise ConfigError(
                    "trainer.stack",
                    "canaries give every model a training set of its own size; use trainer.stack=1",
                )
            self.data, self.split, self.canaries = plant(
                self.data, self.split, population_indices(self.split), self.audit, int(cfg.seed)
            )
        check_query_sets(self.split, cfg.split, cfg.dataset, len(self.data), min_queries())
        largest = max(
            len(a) for a in [self.split.target_train, *(t for t, _ in self.split.shadows)]
        )
        if cfg.trainer.batch_size > largest:
            logging.getLogger("mia_bench").warning(
                "trainer.batch_size=%d is larger than every training set (largest: %d "
                "samples); each epoch is one full-batch step",
                cfg.trainer.batch_size,
                largest,
            )
        # Build once now so that a model / defense / attack that cannot work fails before training.
        probe = build_model(cfg.model, self.data.input_shape, self.data.num_classes)
        self.defense_cfg = cfg.defense
        self.shadow_defense_cfg = cfg.defense if cfg.shadow.defense == "same" else NO_DEFENSE
        self.feature_dim = probe.feature_dim
        # The model cache keys weights by the model's code and the data's content too.
        self.model_source = source_digest(probe)
        self.data_key = content_key(cfg.dataset, self.data)
        for dcfg in (self.defense_cfg, self.shadow_defense_cfg):
            # feature_dim None (a model without nn.Linear): built with 1 so that the check below
            # names the model, not the defense's constructor.
            built = build(dcfg, self.data.num_classes, probe.feature_dim or 1)
            check_features(built, probe, cfg)
        self.attacks = build_attacks(cfg.attack, seed=cfg.seed)
        defense = build(self.defense_cfg, self.data.num_classes, probe.feature_dim)
        self.attacks, self.not_applicable = check_defense(defense, cfg, self.split, self.attacks)
        # signals are computed only when an attack that runs reads them
        self.needs: frozenset[str] = frozenset().union(*(a.needs for a in self.attacks))
        # augmented query sets of label-only attacks, answered once per audited model
        self.views = {
            k: v
            for a in self.attacks
            if hasattr(a, "query_views")
            for k, v in a.query_views(self.data.kind).items()
        }
        self.num_reference = reference_model_count(self.attacks)

    # -- training ---------------------------------------------------------------------------
    def _build(
        self,
        role: str,
        defense_cfg: DictConfig,
        train_idx: np.ndarray,
        test_idx: np.ndarray | None = None,
    ) -> tuple[int, Classifier, Defense, dict]:
        """(seed, fresh model, fresh defense with its DefenseContext, cache spec) of one role."""
        cfg, data = self.cfg, self.data
        seed = derive_seed(cfg.seed, role)
        torch.manual_seed(seed)
        model = build_model(cfg.model, data.input_shape, data.num_classes)
        defense = build(defense_cfg, data.num_classes, model.feature_dim)
        model = defense.wrap_model(model)
        defense.attach(build_context(self, role, seed, train_idx, test_idx))
        # Stacked or alone, compiled or not, checkpointed or not: one model, one key.
        spec = {
            "dataset": self.data_key,
            "train_indices": indices_digest(train_idx),
            "model": {**_container(cfg.model), "source": self.model_source},
            "trainer": trainer_identity(cfg.trainer),
            "defense": training_config(defense, defense_cfg),
            "seed": seed,
            "role": role,
        }
        if defense.uses_reference:
            spec["reference_indices"] = indices_digest(self.split.reference)
        if self.canaries is not None:  # canary labels / inputs change the trained weights
            spec["audit"] = self.canaries.identity()
        return seed, model, defense, spec

    def fit_indices(self, role: str, train_idx: np.ndarray) -> np.ndarray:
        """What model `role` trains on: `train_idx` plus, in a canary audit, its canaries."""
        if self.canaries is None:
            return train_idx
        return self.canaries.training_indices(role, train_idx)

    def train(
        self, role: str, defense_cfg: DictConfig, train_idx: np.ndarray, test_idx: np.ndarray
    ) -> TrainedModel:
        cfg, data = self.cfg, self.data
        fit_idx = self.fit_indices(role, train_idx)
        seed, model, defense, spec = self._build(role, defense_cfg, fit_idx, test_idx)
        ckpt_path = self.cache.checkpoint_path(spec)
        checkpointer = (
            Checkpointer(ckpt_path, int(cfg.trainer.get("checkpoint_every", 0)))
            if ckpt_path is not None
            else None
        )

        def make() -> tuple[dict, dict]:
            log = train_model(
                model,
                defense,
                data.x[fit_idx],
                data.y[fit_idx],
                cfg.trainer,
                preprocess=self.preprocess,
                seed=seed,
                device=self.device,
                desc=role,
                progress=self.progress,
                snapshot_epochs=defense.snapshot_epochs,
                checkpointer=checkpointer,
            )
            state = {"model": model.state_dict(), "defense": defense.state_dict()}
            if log.snapshots:
                state["snapshots"] = {str(e): sd for e, sd in log.snapshots.items()}
            return state, {"seconds": log.seconds, "epoch_loss": log.epoch_loss}

        t0 = time.perf_counter()
        state, meta, hit = self.cache.get_or_make(spec, make)
        if checkpointer is not None:
            checkpointer.clear()  # the finished model is stored; its checkpoint is spent
        self.finish(model, defense, state, hit)
        snapshots = {int(e): sd for e, sd in state.get("snapshots", {}).items()}
        return TrainedModel(
            role,
            model,
            defense,
            train_idx,
            test_idx,
            hit,
            time.perf_counter() - t0,
            meta.get("epoch_loss", []),
            snapshots,
        )

    def finish(self, model: Classifier, defense: Defense, state: dict, hit: bool) -> None:
        """Make a trained model (or, on a cache hit, the stored `state`) ready to query: on the
        device, in eval mode, after the defense's `after_training`."""
        if hit:
            model.load_state_dict(state["model"])
            defense.load_state_dict(state["defense"])
        model.to(self.device).eval()
        defense.to(self.device).eval()
        defense.after_training(model, defense.ctx)

    def train_many(
        self, jobs: list[tuple[str, np.ndarray, np.ndarray]], defense_cfg: DictConfig
    ) -> list[TrainedModel]:
        """Models (role, train_idx, test_idx) with one defense config; with `trainer.stack` > 1
        they are trained in groups of that size side by side (mia_bench.train.stacked)."""
        stack = int(self.cfg.trainer.get("stack", 1))
        if stack <= 1 or trains_alone(build(defense_cfg, self.data.num_classes, self.feature_dim)):
            return [self.train(role, defense_cfg, tr, te) for role, tr, te in jobs]
        from mia_bench.train.stacked import train_group

        out: list[TrainedModel] = []
        for g in range(0, len(jobs), stack):
            out += train_group(self, jobs[g : g + stack], defense_cfg)
        return out

    def signals(self, tm: TrainedModel) -> Signals:
        """Signals of a model on its own members (train set) and non-members (test set)."""
        idx = np.concatenate([tm.train_idx, tm.test_idx])
        member = np.r_[np.ones(len(tm.train_idx), bool), np.zeros(len(tm.test_idx), bool)]
        sig = compute_signals(
            tm.model,
            self.data.x[idx],
            self.data.y[idx],
            member,
            preprocess=self.preprocess,
            device=self.device,
            postprocess=tm.defense.postprocess,
            batch_size=int(self.cfg.trainer.eval_batch_size),
            needs=self.needs,
            views=self.views,
        )
        if "public" in self.needs and tm.role == "target":  # only the audited model is scored
            pub = self.split.reference
            sig.public = compute_signals(
                tm.model,
                self.data.x[pub],
                self.data.y[pub],
                np.zeros(len(pub), bool),
                preprocess=self.preprocess,
                device=self.device,
                postprocess=tm.defense.postprocess,
                batch_size=int(self.cfg.trainer.eval_batch_size),
                needs=frozenset({"inputs"}),
            )
        if self.refs is not None:
            self.refs.attach(tm, sig)
        return sig

    def logits(self, tm: TrainedModel, idx: np.ndarray) -> np.ndarray:
        """What the attacker sees: the model's logits on samples idx, after the defense's
        test-time change."""
        return predict_logits(
            tm.model,
            self.data.x[idx],
            preprocess=self.preprocess,
            device=self.device,
            postprocess=tm.defense.postprocess,
            batch_size=int(self.cfg.trainer.eval_batch_size),
        ).numpy()

    def accuracies(self, tm: TrainedModel) -> tuple[float, float]:
        """(train, test) accuracy of the answers the attacker sees, with one pass over both."""
        idx = np.concatenate([tm.train_idx, tm.test_idx])
        correct = self.logits(tm, idx).argmax(1) == self.data.y[idx].numpy()
        n = len(tm.train_idx)
        return float(correct[:n].mean()), float(correct[n:].mean())

    def reference_models(self) -> ReferenceModels | None:
        """Train the reference models shared by LiRA / RMIA, if one of them is selected, and
        hand their outputs to those attacks; `signals` then adds population views."""
        if not self.num_reference:
            return None
        refs = ReferenceModels(self, self.num_reference)
        refs.train()
        refs.save(self.out / "reference.npz")
        return refs

    def reference_list(self) -> list[TrainedModel]:
        return self.refs.models if self.refs is not None else []

    # -- the protocol ---------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        cfg, split = self.cfg, self.split
        self.out.mkdir(parents=True, exist_ok=True)
        split.save(self.out / "split.npz")
        with self.stages("train_target"):
            target = self.train("target", self.defense_cfg, split.target_train, split.target_test)
        with self.stages("train_shadows"):
            jobs = [(f"shadow{i}", tr, te) for i, (tr, te) in enumerate(split.shadows)]
            shadows = self.train_many(jobs, self.shadow_defense_cfg)
        if self.num_reference:
            with self.stages("train_reference"):
                self.refs = self.reference_models()
        with self.stages("signals"):
            target_sig, *shadow_sigs = all_sigs = [self.signals(tm) for tm in [target, *shadows]]
        canary_sig = self.canary_signals(target) if self.canaries is not None else None
        query_sig = target_sig if canary_sig is None else join_queries(target_sig, canary_sig)
        scores: dict[str, np.ndarray] = {"member": query_sig.member}
        with self.stages("attacks"):
            attacks, attack_scores, attack_hits = self.attack_all(
                query_sig, shadow_sigs, usual=len(target_sig)
            )
        scores.update(attack_scores)

        # The target's and shadows' accuracies come from their signals (the same answers),
        # so their queries are not answered twice (MemGuard's search is costly).
        accs = {tm.role: accuracies(sig) for tm, sig in zip([target, *shadows], all_sigs)}
        models = {}
        for tm in [target, *shadows, *auxiliary_models(self), *self.reference_list()]:
            train_acc, test_acc = accs[tm.role] if tm.role in accs else self.accuracies(tm)
            models[tm.role] = {
                "cache_hit": tm.cache_hit,
                "seconds": round(tm.seconds, 3),
                "train_acc": train_acc,
                "test_acc": test_acc,
                "final_train_loss": tm.epoch_loss[-1] if tm.epoch_loss else None,
            }
        results = {
            "config": _container(cfg),
            "target": target_summary(target_sig),
            "defense": target.defense.describe(),
            "shadow": {
                "defense": cfg.shadow.defense,
                "count": len(shadows),
                "adaptive": cfg.shadow.defense == "same",
            },
            "reference": (
                {
                    "num_models": self.num_reference,
                    "population": len(self.refs.population),
                    "defense": cfg.shadow.defense,
                }
                if self.refs
                else None
            ),
            "attacks": attacks,
            "models": models,
            "attack_cache_hits": attack_hits,
            "timing": {},
            "env": environment(self.device),
        }
        if canary_sig is not None:
            with self.stages("audit"):
                results["audit"] = audit_results(
                    self.audit,
                    {k: v[len(target_sig) :] for k, v in attack_scores.items()},
                    canary_sig.member,
                    target.defense,
                    adaptive=cfg.shadow.defense == "same",
                )
            scores["canary"] = np.r_[
                np.zeros(len(target_sig), bool), np.ones(len(canary_sig), bool)
            ]
            self.canaries.save(self.out / "canaries.npz")
            image = self.data.kind == "image"
            atomic_write_npz(
                self.out / "vulnerable.npz",
                **most_vulnerable(
                    attack_scores,
                    query_sig.member,
                    np.r_[target.train_idx, target.test_idx, self.canaries.index],
                    query_sig.labels,
                    scores["canary"],
                    self.data.x.numpy() if image else None,
                ),
            )
        if target.snapshots:
            # One point per snapshot; the last one is the final model, i.e. the keys above.
            with self.stages("checkpoints"):
                results["checkpoints"] = evaluate_checkpoints(self, target, shadows, results)
        results["timing"] = {k: round(v, 3) for k, v in self.stages.seconds.items()}
        scores["target_loss"] = query_sig.loss
        atomic_write_npz(self.out / "scores.npz", **scores)
        summary = format_summary(results)
        atomic_write_text(self.out / "summary.md", summary)
        # results.json last: its presence marks a complete run.
        atomic_write_json(self.out / "results.json", results)
        return results

    def canary_signals(self, target: TrainedModel) -> Signals:
        """Signals of the target on the canaries (member = the target trained on it), with
        their labels as trained and, for LiRA / RMIA, the population view."""
        can = self.canaries
        sig = compute_signals(
            target.model,
            self.data.x[can.index],
            self.data.y[can.index],
            can.keep_row(target.role),
            preprocess=self.preprocess,
            device=self.device,
            postprocess=target.defense.postprocess,
            batch_size=int(self.cfg.trainer.eval_batch_size),
            needs=self.needs,
            views=self.views,  # label-only attacks score canaries through the same queries
        )
        if self.refs is not None:
            self.refs.attach(target, sig, can.index)
        return sig

    def attack_all(
        self, target_sig: Signals, shadow_sigs: list[Signals], usual: int | None = None
    ) -> tuple[dict, dict, dict]:
        """Fit every attack on the shadows and score the target (through the attack cache):
        (metrics, scores, cache hits) by result name; attacks the defense makes inapplicable
        get null metrics and the reason. Metrics read the first `usual` queries (all by
        default); the rest are canaries, scored alike and judged by `audit_results`."""
        n = len(target_sig) if usual is None else usual
        attacks: dict[str, dict] = {}
        scores: dict[str, np.ndarray] = {}
        hits: dict[str, bool] = {}
        for attack in self.attacks:
            sc, pred, hits[attack.name] = attack_outputs(
                self.attack_cache,
                attack,
                _container(self.cfg.attack[attack.name]),
                int(self.cfg.seed),
                shadow_sigs,
                target_sig,
            )
            for name, s in sc.items():
                scores[name] = np.asarray(s, dtype=np.float64)
                p = pred.get(name)
                attacks[name] = attack_metrics(
                    s[:n], target_sig.member[:n], p[:n] if p is not None else None
                )
        for name, reason in self.not_applicable.items():
            attacks[name] = not_applicable(reason)
        return attacks, scores, hits


def join_queries(target_sig: Signals, canary_sig: Signals) -> Signals:
    """The target's usual queries followed by its canaries, as one query set for the attacks
    (every attack scores each query on its own); population views are joined too, and the
    audited model's signals on the public reference fold (quantile regression) carried over."""
    joined = Signals.concat([target_sig, canary_sig])
    a, b = target_sig.population, canary_sig.population
    if a is not None and b is not None:
        joined.population = PopulationView(np.r_[a.index, b.index], a.logits)
    joined.public = target_sig.public
    return joined


def environment(device: torch.device) -> dict[str, str]:
    import hydra
    import sklearn

    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or "cpu"
    )
    return {
        "mia_bench": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "sklearn": sklearn.__version__,
        "hydra": hydra.__version__,
        "device": str(device),
        "device_name": name,
        "threads": str(torch.get_num_threads()),
    }


def check_features(defense: Defense, model: Classifier, cfg: DictConfig) -> None:
    """A defense that reads penultimate features needs a model that has them (a model of any
    architecture has them at the input of its last nn.Linear)."""
    if defense.needs_features and model.feature_dim is None:
        name = cfg.model.get("name") or cfg.model.get("_target_")
        raise ConfigError(
            "model",
            f"{name} has no nn.Linear whose input could serve as the penultimate features that "
            f"defense={defense.name} needs; end the model with an nn.Linear, or choose another "
            "defense",
        )


def check_writable(folder: Path) -> None:
    """Refuse, before any training, an output folder that cannot be created or written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-probe"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise ConfigError(
            "hydra.run.dir",
            f"cannot write to the output folder {folder} ({err.strerror}); choose another with "
            "hydra.run.dir=... (or hydra.sweep.dir=... for -m)",
        ) from err


def completed_results(cfg: DictConfig, output_dir: str | Path) -> dict[str, Any] | None:
    """The results of an earlier, complete run of exactly this config in this folder, if any.

    results.json is written last and atomically, so its presence means the run finished; a
    rerun of the same sweep (same `hydra.sweep.dir`) then skips the jobs that are done.
    """
    path = Path(output_dir) / "results.json"
    if not path.exists():
        return None
    try:
        results = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return results if results.get("config") == _container(cfg) else None


def run(cfg: DictConfig, output_dir: str | Path) -> dict[str, Any]:
    """Validate-and-prepare, then run one experiment; returns the results dict.

    A folder that already holds the results of the same config is not run again.
    """
    done = completed_results(cfg, output_dir)
    if done is not None:
        logging.getLogger(__name__).info("%s already holds complete results; skipping", output_dir)
        return done
    exp = Experiment(cfg, output_dir)
    exp.prepare()
    return exp.run()
