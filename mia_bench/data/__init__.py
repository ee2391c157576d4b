"""Datasets: each family in its own file, all decoded to `TensorData`.

A dataset is chosen like every other config group: `conf/dataset/<name>.yaml` names the
function (or class) that loads it in `_target_`, and its other keys are that function's
keyword arguments. A user's own loader is one more YAML file (in a `--config-dir` or a
`hydra.searchpath` folder) whose `_target_` points into the user's module, which must be
importable (the working directory, or $PYTHONPATH).
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from mia_bench.config_objects import instantiate
from mia_bench.data.base import TensorData
from mia_bench.data.tensor_cache import tensor_digest
from mia_bench.errors import ConfigError

# Keys every dataset YAML may hold that are not arguments of its loader.
META_KEYS = ("name", "kind", "augment")
# Keys that say where the data is or how it is obtained, not what it is: the model cache keys
# a model by the data's content digest instead (the same files in another folder are a hit).
LOCATION_KEYS = ("path", "root", "system_dir", "download", "verify")


def load_dataset(cfg_dataset: DictConfig | dict, data_dir: str | None = None) -> TensorData:
    """Load the dataset that `cfg.dataset` describes, as tensors on the CPU: its `_target_`
    is called with the remaining keys (and `data_dir`, when it takes one)."""
    data = instantiate(
        "dataset",
        cfg_dataset,
        skip=META_KEYS,
        offered={"data_dir": data_dir},
    )
    if not isinstance(data, TensorData):
        raise ConfigError(
            "dataset._target_",
            f"{cfg_dataset['_target_']} returned {type(data).__name__}, "
            "not mia_bench.data.TensorData",
        )
    # File-backed loaders bring the digest from their tensor cache (computed once per file
    # version); generated data and a user's own loader are hashed here.
    data.meta["digest"] = data.meta.get("digest") or tensor_digest({"x": data.x, "y": data.y})
    return data


def content_key(cfg_dataset: DictConfig | dict, data: TensorData) -> dict[str, Any]:
    """What identifies the training data in the model cache: the dataset's settings without
    its location keys, plus the digest of the tensors it decoded to."""
    params = cfg_dataset
    if isinstance(params, DictConfig):
        params = OmegaConf.to_container(params, resolve=True)
    out = {k: v for k, v in params.items() if k not in LOCATION_KEYS}
    out["content"] = data.meta["digest"]
    return out


__all__ = ["LOCATION_KEYS", "META_KEYS", "TensorData", "content_key", "load_dataset"]
