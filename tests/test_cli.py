"""`droidrl train` end to end: today it boots a simulated phone farm and checks it through real adb."""

import os
import subprocess
import sys


def test_train_boots_and_checks_a_farm(tmp_path):
    env = dict(os.environ, COLUMNS="120", HOME=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-m", "droidrl.cli", "train", "--phones", "2"],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "the RL training loop is not built yet" in result.stdout
    rows = [line for line in result.stdout.splitlines() if "emulator-" in line]
    assert len(rows) == 2
    for row in rows:
        assert row.count("yes") == 2 and "1080x2400" in row


def test_train_rejects_bad_phone_count():
    result = subprocess.run(
        [sys.executable, "-m", "droidrl.cli", "train", "--phones", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--phones must be >= 1, got 0" in result.stdout
