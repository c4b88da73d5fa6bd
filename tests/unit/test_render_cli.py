"""`sharedcore render`: a YAML stream for good input, one line and exit code 2 for bad input."""

from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import CliRunner

from sharedcore.cli import main
from tests.golden.samples import INPUTS_DIR


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["render", *args])
    return result.exit_code, result.stdout, result.stderr


def test_prints_a_yaml_stream() -> None:
    path = INPUTS_DIR / "document-management.yaml"
    code, out, _ = run(
        "-f",
        str(path),
        "--site",
        "danang",
        "--role",
        "active",
        "--epoch",
        "3",
        "--peer",
        "quangnam",
        "--ingress-address",
        "203.0.113.10",
    )
    assert code == 0
    assert out.startswith("---\n")
    objects = list(yaml.safe_load_all(out))
    kinds = {obj["kind"] for obj in objects}
    assert {"Deployment", "Cluster", "ReplicationSource", "DNSEndpoint"} <= kinds
    cluster = next(obj for obj in objects if obj["kind"] == "Cluster")
    assert cluster["metadata"]["labels"]["sharedcore.danang.gov.vn/epoch"] == "3"


def test_invalid_service_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    document = yaml.safe_load((INPUTS_DIR / "document-management.yaml").read_text())
    document["spec"]["replicas"] = 0
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(document))
    code, out, err = run("-f", str(path), "--site", "danang", "--role", "Active")
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert "spec.replicas" in err
    assert "Traceback" not in err


def test_unparsable_yaml_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("spec: [unclosed\n")
    code, _, err = run("-f", str(path), "--site", "danang", "--role", "Standby")
    assert code == 2
    assert len(err.strip().splitlines()) == 1


def test_unknown_role_is_a_usage_error() -> None:
    code, _, _ = run("-f", str(INPUTS_DIR / "open-data.yaml"), "--site", "danang", "--role", "Primary")
    assert code == 2


def test_missing_file_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    code, _, err = run("-f", str(tmp_path / "absent.yaml"), "--site", "danang", "--role", "Active")
    assert code == 2
    assert len(err.strip().splitlines()) == 1
