"""What a config names by `_target_` (a dataset loader, a model class): import it, and ask
which keywords it takes, with errors that name the setting."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from mia_bench.errors import ConfigError


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


def takes_keyword(fn: Callable[..., Any], name: str, *, unknown: bool) -> bool:
    """Whether `fn` accepts the keyword `name` (by name or through **kwargs); `unknown` when
    its signature cannot be read (some builtins and C extensions)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return unknown
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def check_keywords(key: str, fn: Callable[..., Any], kwargs: dict[str, Any], what: str) -> None:
    """Refuse, before calling `fn`, keywords it does not take (a typo on the command line) or
    a required one that is missing: a ConfigError naming `key`, not a TypeError from inside."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # no readable signature: the call itself decides
        return
    try:
        signature.bind(**kwargs)
    except TypeError as err:
        raise ConfigError(key, f"{what}: {err}") from err
