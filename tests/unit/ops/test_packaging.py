"""Packaging: a team installs only what it uses, and the components import without the rest."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import commerce_db.cli as cli
from commerce_db.cli import main

ROOT = Path(__file__).resolve().parents[3]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
EXTRAS: dict[str, list[str]] = PROJECT["optional-dependencies"]
DATA_AND_TOOLING = ("asyncpg", "redis", "boto3", "pyyaml", "matplotlib", "pulumi-policy")


def _names(requirements: list[str]) -> set[str]:
    return {
        r.split("[")[0].split(">")[0].split("<")[0].split("=")[0].split(";")[0].strip() for r in requirements
    }


def test_base_install_has_no_dependencies() -> None:
    assert PROJECT["dependencies"] == []


def test_infra_extra_is_only_the_pulumi_packages() -> None:
    assert _names(EXTRAS["infra"]) == {"pulumi", "pulumi-aws", "pulumi-random"}
    assert not _names(EXTRAS["infra"]) & set(DATA_AND_TOOLING)


def test_data_extra_is_only_the_drivers() -> None:
    assert _names(EXTRAS["data"]) == {"asyncpg", "redis", "boto3"}


def test_dev_install_gets_everything() -> None:
    # ./dev installs .[dev]: it must reach every other extra (through [all] -> [cli] -> [infra,data]).
    def reach(extra: str) -> set[str]:
        found = {extra}
        for req in EXTRAS[extra]:
            if req.startswith("commerce-db["):
                for sub in req[len("commerce-db[") : req.index("]")].split(","):
                    found |= reach(sub.strip())
        return found

    # [scan] (checkov) cannot share a venv with pulumi; ./dev installs it into .venv-scan.
    assert reach("dev") == set(EXTRAS) - {"scan"}


def test_components_import_without_data_access_or_tooling() -> None:
    # In a fresh interpreter: import every components module, then look at what came along.
    script = """
import importlib, json, pkgutil, sys
import commerce_db_components as pkg
for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
    importlib.import_module(info.name)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {mods})))
""".replace(
        "{mods}", repr({"asyncpg", "redis", "boto3", "botocore", "dataaccess", "commerce_db", "matplotlib"})
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd="/")
    assert json.loads(out.stdout) == []


def test_cli_without_its_extra_names_the_install_line() -> None:
    script = (
        "import sys; sys.modules['yaml'] = None\nfrom commerce_db.cli import main\nsys.exit(main(['--help']))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd="/")
    assert done.returncode == 2
    assert "pip install 'commerce-db[cli]'" in done.stderr and "'yaml'" in done.stderr


def test_cli_reraises_unrelated_missing_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_: object) -> int:
        raise ModuleNotFoundError("No module named 'no_such_thing'", name="no_such_thing")

    real = cli.build_parser

    def parser() -> object:
        p = real()
        p.set_defaults(func=broken)
        return p

    monkeypatch.setattr(cli, "build_parser", parser)
    with pytest.raises(ModuleNotFoundError, match="no_such_thing"):
        main([])


def test_every_pinned_install_line_names_this_release() -> None:
    # Docs and examples pin the tag of the version being released (never a tag that was not made).
    pins: dict[str, set[str]] = {}
    for path in [
        *ROOT.glob("*.md"),
        *ROOT.glob("docs/*.md"),
        *ROOT.glob("examples/**/*"),
        *ROOT.glob("plugin/*"),
    ]:
        if path.is_file() and path.suffix in (".md", ".txt", ".py", ".yaml"):
            for found in re.findall(r"commerce-db(?:\.git)?(?:/plugin)?@v(\d+\.\d+\.\d+)", path.read_text()):
                pins.setdefault(found, set()).add(str(path.relative_to(ROOT)))
    assert pins, "no pinned install line found"
    assert set(pins) == {PROJECT["version"]}, pins


def test_every_package_directory_is_listed_in_pyproject() -> None:
    # setuptools cannot combine package discovery with the renamed components directory, so the
    # packages are listed: a new subpackage that is not listed would be missing from installs.
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = set()
    for top, name in (("components", "commerce_db_components"), ("commerce_db", "commerce_db"),
                      ("dataaccess", "dataaccess")):  # fmt: skip
        for init in (ROOT / top).rglob("__init__.py"):
            if "__pycache__" not in init.parts:
                rel = init.parent.relative_to(ROOT / top).parts
                found.add(".".join((name, *rel)))
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"
    # The rest are data directories (listed so setuptools does not warn that they are importable
    # but absent): they exist and hold no Python code.
    roots = {"commerce_db_components": "components", "commerce_db": "commerce_db", "dataaccess": "dataaccess"}
    for name in listed - found:
        top, *rest = name.split(".")
        directory = ROOT.joinpath(roots[top], *rest)
        assert directory.is_dir() and not list(directory.glob("*.py")), name


def test_a_consumer_with_its_own_components_package_imports_ours(tmp_path: Path) -> None:
    # The reported bug: a team's own top-level `components` package shadowed ours (ImportError).
    # Ours installs as commerce_db_components; the consumer's program runs from its own directory,
    # so its `components` comes first on sys.path, as in a real Pulumi program.
    consumer = tmp_path / "team-infra"
    (consumer / "components").mkdir(parents=True)
    (consumer / "components" / "__init__.py").write_text("TEAM = 'checkout'\n")
    (consumer / "__main__.py").write_text(
        "import json, sys\n"
        "import components\n"
        "from commerce_db_components import PostgresCluster, PostgresClusterArgs, ProxyLayer\n"
        "from commerce_db_components.multilang import served_components\n"
        "print(json.dumps({'team': components.TEAM, 'ours': PostgresCluster.__module__,\n"
        "                  'proxy': ProxyLayer.__module__, 'served': len(served_components()),\n"
        "                  'leaked': sorted(m for m in sys.modules if m.split('.')[0] in\n"
        "                                   ('dataaccess', 'commerce_db', 'asyncpg', 'redis', 'boto3'))}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, str(consumer)], capture_output=True, text=True, cwd=consumer, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "team": "checkout",
        "ours": "commerce_db_components.postgres_cluster",
        "proxy": "commerce_db_components.proxy_layer",
        "served": 5,
        "leaked": [],
    }


def test_the_old_top_level_name_is_not_installed(tmp_path: Path) -> None:
    # Nothing of ours answers to `components` any more (from outside the repository checkout).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", "import components"], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert done.returncode != 0 and "No module named 'components'" in done.stderr


def test_nothing_imports_the_old_package_name() -> None:
    # Inside the checkout `components` is still importable (pytest puts the repository root on
    # sys.path), but it would be a second copy of every module next to commerce_db_components.
    pattern = re.compile(r"^\s*(from components(\.[\w.]+)? import|import components\b)", re.M)
    offenders = [
        str(path.relative_to(ROOT))
        for top in ("components", "commerce_db", "dataaccess", "tests", "examples", "plugin", "policy")
        for path in (ROOT / top).rglob("*.py")
        if pattern.search(path.read_text())
    ] + [p for p in ("__main__.py",) if pattern.search((ROOT / p).read_text())]
    assert not offenders, (
        f"import the components as commerce_db_components (inside components/: relative imports): {offenders}"
    )
