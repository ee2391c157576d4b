"""Architectures. Each built-in one takes (input_shape, num_classes, **yaml params) and is a
`Classifier`; any other `torch.nn.Module` named by `model._target_` is built with its YAML
params (plus `input_shape` / `num_classes` when its constructor takes them) and wrapped in a
`ModuleClassifier` (features through a hook on its last `nn.Linear`)."""

from __future__ import annotations

import hashlib
import inspect
import sys
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig
from torch import nn

from mia_bench.config_objects import instantiate, target_of
from mia_bench.errors import ConfigError
from mia_bench.models.base import Classifier
from mia_bench.models.module import ModuleClassifier

# What a model's constructor (or its first forward pass) raises on settings it cannot use.
_MODEL_ERRORS = (TypeError, ValueError, RuntimeError)


def model_class(cfg_model: DictConfig | dict) -> type:
    """The `torch.nn.Module` class that `model._target_` names."""
    cls = target_of("model", cfg_model)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ConfigError("model._target_", f"{cls!r} is not a torch.nn.Module class")
    return cls


def build_model(
    cfg_model: DictConfig | dict, input_shape: Sequence[int], num_classes: int
) -> Classifier:
    """Instantiate `cfg.model` for data of `input_shape` with `num_classes` outputs: a
    `Classifier` is given both; any other module receives those it takes and the YAML does
    not set, and is wrapped in a `ModuleClassifier`."""
    shape = {"input_shape": tuple(input_shape), "num_classes": num_classes}
    if issubclass(model_class(cfg_model), Classifier):
        return instantiate("model", cfg_model, given=shape, errors=_MODEL_ERRORS)
    net = instantiate("model", cfg_model, offered=shape, errors=_MODEL_ERRORS)
    try:
        return ModuleClassifier(net, tuple(input_shape), num_classes)
    except _MODEL_ERRORS as err:
        label = cfg_model.get("name") or cfg_model["_target_"]
        raise ConfigError("model", f"{label}: {err}") from err


def source_digest(model: nn.Module) -> str:
    """SHA-256 of the source files that define `model`: the module file of every class in the
    method resolution order of every submodule, except torch's own. Editing the model's code
    (ReLU to Tanh, a helper in the same file) changes it; the model cache keys weights by it."""
    files: dict[str, bytes] = {}
    for m in model.modules():
        for cls in type(m).__mro__:
            mod = cls.__module__
            if mod in files or mod == "builtins" or mod.split(".")[0] == "torch":
                continue
            path = getattr(sys.modules.get(mod), "__file__", None)
            try:
                files[mod] = Path(path).read_bytes() if path else inspect.getsource(cls).encode()
            except (OSError, TypeError):
                files[mod] = cls.__qualname__.encode()  # no source (e.g. defined in a REPL)
    h = hashlib.sha256()
    for mod in sorted(files):
        h.update(f"{mod}|{len(files[mod])}|".encode())
        h.update(files[mod])
    return h.hexdigest()


__all__ = ["Classifier", "ModuleClassifier", "build_model", "model_class", "source_digest"]
