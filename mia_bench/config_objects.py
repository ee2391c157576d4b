"""The one way a config becomes an object: every group (dataset, split, model, defense,
attack) names what builds it in `_target_` (module.attr) and its other keys are that
callable's keyword arguments. `instantiate` imports the target, binds the keys to its
signature and calls it; every failure is a ConfigError naming the setting (`<group>.<key>`),
before any training starts."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection, Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mia_bench import conf_dir
from mia_bench.errors import ConfigError

# Parameter kinds a config key can fill (by name).
_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def import_target(key: str, target: object) -> Any:
    """The object a `_target_` setting names (module.attr), or a ConfigError naming `key`
    with the import failure; user modules come from the working directory or $PYTHONPATH."""
    from hydra.utils import get_object

    try:
        return get_object(str(target))
    except Exception as err:  # noqa: BLE001 - any import failure is a bad setting
        cause = err.__cause__ or err
        raise ConfigError(
            key,
            f"cannot import {target!r} ({type(cause).__name__}: {cause}); the module must be "
            "importable from the working directory or $PYTHONPATH",
        ) from err


def target_of(group: str, cfg: Mapping[str, Any]) -> Callable[..., Any]:
    """The callable that `<group>._target_` names; a ConfigError naming that key when it is
    missing (listing the group's configs in conf/), cannot be imported or cannot be called."""
    target = cfg.get("_target_")
    if not target:
        folder = group.split(".")[0]
        names = sorted(p.stem for p in (conf_dir() / folder).glob("*.yaml"))
        raise ConfigError(
            f"{group}._target_",
            f"the {group} config names nothing to build; choose {folder}=<name> of {names}, "
            "or give _target_: module.Name",
        )
    fn = import_target(f"{group}._target_", target)
    if not callable(fn):
        raise ConfigError(f"{group}._target_", f"{target!r} is not a function or class")
    return fn


def _signature(fn: Callable[..., Any]) -> inspect.Signature | None:
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError):  # some builtins and C extensions: the call decides
        return None


def takes(fn: Callable[..., Any], name: str) -> bool:
    """Whether `fn` accepts the keyword `name` (by name or through **kwargs); False when its
    signature cannot be read."""
    sig = _signature(fn)
    if sig is None:
        return False
    params = sig.parameters
    named = name in params and params[name].kind in _NAMED
    return named or any(p.kind is p.VAR_KEYWORD for p in params.values())


def bind(
    group: str,
    fn: Callable[..., Any],
    settings: Mapping[str, Any],
    *,
    given: Mapping[str, Any] | None = None,
    offered: Mapping[str, Any] | None = None,
    label: str = "",
) -> dict[str, Any]:
    """The keyword arguments of `fn` for a config group: `settings` (its YAML keys), plus
    `given` (what the run supplies, always passed: a YAML key of the same name is refused)
    and `offered` (passed when `fn` takes it and the YAML does not set it). Checked against
    the signature with `inspect.Signature.bind`: a key `fn` does not take, or a parameter
    without a default that nothing sets, is a ConfigError naming `<group>.<key>`."""
    label = label or getattr(fn, "__qualname__", repr(fn))
    given, offered = dict(given or {}), dict(offered or {})
    for key, value in given.items():
        if key in settings:
            raise ConfigError(f"{group}.{key}", f"is set by the run ({value!r}); remove it")
    kwargs = {**settings, **given}
    kwargs.update({k: v for k, v in offered.items() if k not in kwargs and takes(fn, k)})
    sig = _signature(fn)
    if sig is None:
        return kwargs
    params = sig.parameters
    named = [n for n, p in params.items() if p.kind in _NAMED]
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        for key in kwargs:
            if key not in named:
                settable = [n for n in named if n not in given and n not in offered]
                raise ConfigError(
                    f"{group}.{key}",
                    f"{label} takes no such setting; it takes: {', '.join(settable) or 'none'}",
                )
    for key in named:
        if params[key].default is params[key].empty and key not in kwargs:
            raise ConfigError(f"{group}.{key}", f"is required by {label}; set it")
    try:
        sig.bind(**kwargs)
    except TypeError as err:  # e.g. a positional-only parameter: nothing a config can fill
        raise ConfigError(group, f"{label}: {err}") from err
    return kwargs


def settings_of(cfg: Mapping[str, Any] | DictConfig, skip: Collection[str]) -> dict[str, Any]:
    """The config as plain Python values (interpolations resolved against the whole config a
    node belongs to), without `_target_` and the keys in `skip`."""
    if not isinstance(cfg, DictConfig):
        cfg = OmegaConf.create(dict(cfg))
    params = OmegaConf.to_container(cfg, resolve=True)
    return {k: v for k, v in params.items() if k != "_target_" and k not in skip}


def instantiate(
    group: str,
    cfg: Mapping[str, Any] | DictConfig,
    *,
    skip: Collection[str] = ("name",),
    given: Mapping[str, Any] | None = None,
    offered: Mapping[str, Any] | None = None,
    errors: tuple[type[Exception], ...] = (),
) -> Any:
    """Build what `cfg._target_` names from the config's other keys (see `bind`; keys in
    `skip` describe the object and are not arguments).

    A ConfigError the target raises with one of its own parameter names as key (an attack,
    which does not know the name it is configured under) is re-raised as `<group>.<key>`;
    the exception types in `errors` become a ConfigError naming the group.
    """
    fn = target_of(group, cfg)
    settings = settings_of(cfg, skip)
    label = str(cfg.get("name") or cfg.get("_target_"))
    kwargs = bind(group, fn, settings, given=given, offered=offered, label=label)
    try:
        return fn(**kwargs)
    except ConfigError as err:
        if err.key in kwargs:
            raise ConfigError(f"{group}.{err.key}", err.message) from err
        raise
    except errors as err:
        raise ConfigError(group, f"{label}: {err}") from err
