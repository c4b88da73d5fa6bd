"""`sharedcore-testbed up --pair` refuses what it cannot build before it starts anything."""

from pathlib import Path

from click.testing import CliRunner

from sharedcore_testbed.cli import main


def test_the_pair_needs_real_nodes_and_the_two_sites_and_a_witness(tmp_path: Path) -> None:
    runner = CliRunner()
    kwok = runner.invoke(main, ["up", "--dir", str(tmp_path), "--pair", "danang", "quangnam", "witness"])
    assert kwok.exit_code != 0 and "--pair needs --nodes real" in kwok.output
    args = ["up", "--dir", str(tmp_path), "--nodes", "real", "--pair", "hue", "quangnam", "witness"]
    named = runner.invoke(main, args)
    assert named.exit_code != 0 and "danang quangnam witness" in named.output
    assert not (tmp_path / "testbed.json").exists()  # nothing was started
