"""Offline config validation: run the program's own config loader on a :class:`StackSettings`.

No Pulumi CLI and no engine: the settings are installed as the in-process Pulumi config,
``commerce_db_components.config.load_stack_config`` parses them exactly as the program will, and the
previous config is restored. A bad value raises :class:`SettingsError` naming the key.
"""

from __future__ import annotations

from typing import Any

from pulumi.runtime import config as _runtime_config

from commerce_db.automation.errors import SettingsError
from commerce_db.automation.settings import StackSettings


def check_stack_config(settings: StackSettings) -> Any:
    """The :class:`commerce_db_components.config.StackConfig` for ``settings``, or :class:`SettingsError`.

    Secret values are installed too (a loader may check they are present) but never appear
    in the error: ``ConfigError`` messages name the key and the *allowed* values, and secret
    keys are reported without their value.
    """
    from commerce_db_components.config import ConfigError, load_stack_config

    previous = dict(_runtime_config.CONFIG.get())
    previous_secrets = set(_runtime_config._SECRET_KEYS.get())
    encoded = {k: v for k, (v, _secret) in settings.config_map().items()}
    _runtime_config.set_all_config(encoded, secret_keys=sorted(settings.secrets))
    try:
        return load_stack_config(None, stack=settings.stack)
    except ConfigError as exc:
        key = getattr(exc, "key", None)
        qualified = f"{settings.project}:{key}" if key and ":" not in str(key) else key
        if qualified in settings.secrets:
            raise SettingsError(f"secret config {qualified!r} is invalid", key=qualified) from None
        raise SettingsError(f"stack {settings.stack!r}: {exc}", key=qualified) from exc
    finally:
        _runtime_config.set_all_config(previous, secret_keys=sorted(previous_secrets))
