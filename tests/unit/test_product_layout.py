"""The product wheel carries the operator only: the testbed and its stand-ins are a distribution apart."""

import tomllib
from pathlib import Path

from click.testing import CliRunner

from sharedcore.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_product_package_never_imports_the_testbed() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "operator" / "sharedcore").rglob("*.py")
        if "sharedcore_testbed" in path.read_text()
    ]
    assert offenders == []
    assert not (ROOT / "operator" / "sharedcore" / "testbed").exists()


def test_sharedcore_cli_has_no_testbed_command() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "testbed" not in result.output


def test_testbed_is_its_own_distribution_with_its_own_command() -> None:
    product = tomllib.loads((ROOT / "pyproject.toml").read_text())
    testbed = tomllib.loads((ROOT / "testbed" / "pyproject.toml").read_text())
    assert "sharedcore-testbed" not in product["project"]["scripts"]
    assert testbed["project"]["scripts"]["sharedcore-testbed"] == "sharedcore_testbed.cli:main"
    # The operator mints only its databases' CAs (declared for that); the testbed's PKI stays the testbed's.
    minting = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "operator").rglob("*.py")
        if "from cryptography" in path.read_text()
    }
    assert minting == {"operator/sharedcore/replication/credentials.py"}
    assert any(dep.startswith("cryptography") for dep in product["project"]["dependencies"])
