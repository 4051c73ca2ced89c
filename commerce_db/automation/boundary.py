"""The one module that talks to ``pulumi.automation`` (and so needs the Pulumi CLI).

Everything else in :mod:`commerce_db.automation` is pure and works against the
:class:`StackHandle` protocol below; tests inject their own handle through the
``opener`` parameter of the operations, and the real one is :func:`open_stack`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import weakref
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol, cast

from commerce_db.automation import errors
from commerce_db.automation.settings import StackSettings

Program = Callable[[], None]


class StackHandle(Protocol):
    """The subset of ``pulumi.automation.Stack`` the operations use (same signatures, keyword args)."""

    def preview(self, **kwargs: Any) -> Any: ...
    def up(self, **kwargs: Any) -> Any: ...
    def refresh(self, **kwargs: Any) -> Any: ...
    def destroy(self, **kwargs: Any) -> Any: ...
    def cancel(self) -> None: ...
    def outputs(self) -> Mapping[str, Any]: ...


class StackOpener(Protocol):
    """Returns a ready :class:`StackHandle` (config already set) for ``settings``."""

    def __call__(self, settings: StackSettings, program: Program, *, create: bool) -> StackHandle: ...


def require_pulumi_cli(which: Callable[[str], str | None] = shutil.which) -> str:
    """Path of the ``pulumi`` binary, or :class:`~errors.PulumiCliNotFoundError`."""
    path = which("pulumi")
    if not path:
        raise errors.PulumiCliNotFoundError()
    return path


def _noop_program() -> None:
    """Inline program used when only reading a stack (outputs); never run by ``pulumi``."""


def open_stack(
    settings: StackSettings,
    program: Program = _noop_program,
    *,
    create: bool = True,
    work_dir: Path | None = None,
    env_vars: Mapping[str, str] | None = None,
) -> StackHandle:
    """Select (or, with ``create``, create) ``settings.stack`` with ``program`` inline and set its config.

    The config is set on every open, also when only selecting: the workspace is a fresh
    directory holding only project settings, so an operation run without it (refresh, drift
    check, destroy) would run the program with no config at all. That also means setting config
    never rewrites the repo's committed ``Pulumi.<stack>.yaml``. The temporary workspace (when
    ``work_dir`` is None) is removed once the returned handle is garbage-collected.
    The backend is whatever the environment selects (``PULUMI_BACKEND_URL`` / ``pulumi login``).
    """
    cli = require_pulumi_cli()
    owned = Path(tempfile.mkdtemp(prefix="commerce-db-automation-")) if work_dir is None else None
    try:
        stack = _select_and_configure(cli, settings, program, create, work_dir or owned, env_vars)
    except BaseException:
        if owned is not None:
            shutil.rmtree(owned, ignore_errors=True)
        raise
    if owned is not None:
        weakref.finalize(stack, shutil.rmtree, owned, True)
    # pulumi's Stack has the full keyword signatures; the protocol only promises keyword calls.
    return cast(StackHandle, _MaskedOutputs(stack, cli))


def _select_and_configure(
    cli: str,
    settings: StackSettings,
    program: Program,
    create: bool,
    work_dir: Path | None,
    env_vars: Mapping[str, str] | None,
) -> Any:
    from pulumi import automation as auto

    stack_settings = None
    if settings.encryption:
        # Keep the stack's own secrets provider: without it the CLI would use the default one.
        stack_settings = {
            settings.stack: auto.StackSettings(
                secrets_provider=settings.encryption.get("secretsprovider"),
                encrypted_key=settings.encryption.get("encryptedkey"),
                encryption_salt=settings.encryption.get("encryptionsalt"),
            )
        }
    opts = auto.LocalWorkspaceOptions(
        work_dir=str(work_dir) if work_dir else None,
        env_vars=dict(env_vars) if env_vars else None,
        project_settings=auto.ProjectSettings(name=settings.project, runtime="python"),
        stack_settings=stack_settings,
    )
    with translate_pulumi_errors("select", settings.stack):
        if create:
            stack = auto.create_or_select_stack(
                settings.stack, project_name=settings.project, program=program, opts=opts
            )
        else:
            stack = auto.select_stack(
                settings.stack, project_name=settings.project, program=program, opts=opts
            )
        config = settings.config_map()
        plain = {k: auto.ConfigValue(value=v) for k, (v, secret) in config.items() if not secret}
        if plain:
            stack.set_all_config(plain)
        for key, value in settings.secrets.items():
            _set_secret_config(cli, stack.workspace, settings.stack, key, value)
    return stack


class _MaskedOutputs:
    """A ``pulumi.automation.Stack`` whose outputs come only from ``pulumi stack output --json``
    (no ``--show-secrets``). Why: the SDK flags an output secret only when its whole value is
    secret, so a secret nested in a structured output would come back in plain text."""

    def __init__(self, stack: Any, cli: str) -> None:
        self._stack = stack
        self._cli = cli

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stack, name)

    def outputs(self) -> dict[str, Any]:
        from pulumi import automation as auto

        done = _run_cli(
            self._cli, self._stack.workspace, ["stack", "output", "--json", "--stack", self._stack.name]
        )
        if done.returncode != 0:
            raise errors.OperationFailedError("stack output", self._stack.name, _tail(done.stderr))
        masked = json.loads(done.stdout or "{}")
        return {k: auto.OutputValue(value=v, secret=_contains_mask(v)) for k, v in masked.items()}

    def up(self, **kwargs: Any) -> Any:
        result = self._stack.up(**kwargs)
        result.outputs = self.outputs()
        return result


def _contains_mask(value: Any) -> bool:
    if value == SECRET_SENTINEL:
        return True
    if isinstance(value, dict):
        return any(_contains_mask(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_mask(v) for v in value)
    return False


SECRET_SENTINEL = "[secret]"
"""How ``pulumi stack output --json`` prints a secret value."""


def _run_cli(
    cli: str, workspace: Any, args: list[str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the pulumi CLI in ``workspace``'s directory and environment (as the SDK does)."""
    env = {**os.environ, **(workspace.env_vars or {})}
    if getattr(workspace, "pulumi_home", None):
        env["PULUMI_HOME"] = workspace.pulumi_home
    return subprocess.run(
        [cli, *args],
        input=stdin,
        cwd=workspace.work_dir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def _set_secret_config(cli: str, workspace: Any, stack: str, key: str, value: str) -> None:
    """``pulumi config set --secret KEY`` with the value on stdin.

    Why not ``set_all_config``: the SDK passes every value as a command-line argument, where
    any user of the machine can read it (``ps``) while the command runs.
    """
    done = _run_cli(
        cli, workspace, ["config", "set", "--secret", "--non-interactive", "--stack", stack, key], stdin=value
    )
    if done.returncode != 0:
        detail = _tail(done.stderr.replace(value, "[secret]") if value else done.stderr)
        raise errors.OperationFailedError("config set", stack, f"secret {key!r}: {detail}")


def _tail(text: str, lines: int = 15) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()]
    return "\n".join(kept[-lines:]) or "(no output)"


@contextlib.contextmanager
def translate_pulumi_errors(operation: str, stack: str) -> Iterator[None]:
    """Re-raise ``pulumi.automation`` errors as this package's typed errors."""
    from pulumi.automation import errors as auto_errors

    try:
        yield
    except auto_errors.StackNotFoundError as exc:
        raise errors.StackNotFoundError(
            f"stack {stack!r} does not exist in the current backend (run `pulumi stack init {stack}` "
            "or let the operation create it)"
        ) from exc
    except auto_errors.ConcurrentUpdateError as exc:
        raise errors.ConcurrentUpdateError(
            f"stack {stack!r} is locked by another update; wait for it or run `pulumi cancel` if it is stale"
        ) from exc
    except auto_errors.CommandError as exc:
        raise errors.OperationFailedError(operation, stack, _tail(str(exc))) from exc
    except auto_errors.InvalidVersionError as exc:
        raise errors.PulumiCliVersionError(
            f"pulumi {operation} on stack {stack!r} needs a newer pulumi CLI ({exc}); upgrade it: "
            "https://www.pulumi.com/docs/install/"
        ) from exc
    except RuntimeError as exc:
        if "summary event never found" not in str(exc):
            raise
        # The SDK raises this when the CLI ended without its summary event (killed, or crashed).
        raise errors.OperationFailedError(
            operation, stack, "the pulumi CLI ended without reporting a result (killed or crashed?)"
        ) from exc
    except FileNotFoundError as exc:
        # LocalWorkspace runs `pulumi version` via subprocess; a vanished binary lands here.
        if "pulumi" in str(exc):
            raise errors.PulumiCliNotFoundError() from exc
        raise
