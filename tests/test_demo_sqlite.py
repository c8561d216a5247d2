"""The demo runs on SQLite with tasks in-process: concurrent callbacks must not lock it up."""

import json
import os
import subprocess
import sys

from tests.support.workers import ROOT


def test_callbacks_arriving_together_settle_on_the_demos_sqlite(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    run = subprocess.run(
        [sys.executable, "-m", "tests.support.sqlite_concurrency", str(tmp_path / "demo.sqlite3")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["errors"] == []
    assert report["statuses"] == [200] * 40
    assert (report["completed"], report["credits"]) == (40, 40)
    assert "database is locked" not in run.stderr
