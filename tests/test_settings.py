import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_settings(env):
    clean = {
        k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG", "DATABASE_URL"}
    }
    return subprocess.run(
        [sys.executable, "-c", "import fedsx.server.settings as s; print(s.DEBUG, s.EMBEDDED)"],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_refuses_to_start_with_debug_off_and_no_secret_key(tmp_path):
    result = load_settings({"DEBUG": "0", "FEDSX_DATA_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_embedded_mode_generates_and_keeps_a_secret_key(tmp_path):
    first = load_settings({"FEDSX_DATA_DIR": str(tmp_path)})
    assert first.returncode == 0, first.stderr
    assert first.stdout.split() == ["True", "True"]
    key = (tmp_path / "secret_key").read_text()
    assert len(key) > 40
    assert load_settings({"FEDSX_DATA_DIR": str(tmp_path)}).returncode == 0
    assert (tmp_path / "secret_key").read_text() == key


def test_database_url_switches_off_embedded_mode(tmp_path):
    result = load_settings(
        {
            "DATABASE_URL": "postgres://u@127.0.0.1:1/x",
            "SECRET_KEY": "k",
            "FEDSX_DATA_DIR": str(tmp_path),
        }
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]
