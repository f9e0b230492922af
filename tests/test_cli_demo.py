"""``sfjwt demo`` through the console script: exit 0, the whole story on stdout, and nothing
left behind (temporary files, processes)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

SCRIPT = shutil.which("sfjwt")
COMMAND = [SCRIPT] if SCRIPT else [sys.executable, "-m", "sfjwt_ext"]


def test_demo_runs_end_to_end_and_leaves_nothing_behind(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SF_")}
    env.update(TMPDIR=str(scratch), SFJWT_CONFIG=str(tmp_path / "none.ini"))
    # a user's own settings and proxy must not leak into the demo's login to 127.0.0.1
    env.update(SF_PROFILE="uat", SF_PRIVATE_KEY="not a key", SF_DOMAIN="test",
               HTTPS_PROXY="http://127.0.0.1:9", NO_PROXY="")
    result = subprocess.run(COMMAND + ["demo"], env=env, stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Traceback" not in result.stderr
    # logged in once, queried, expired, one transparent re-login
    assert re.search(r"token requests so far: 1\b", out)
    assert re.search(r"token requests: 1 before, 2 after", out)
    assert "refreshes by this client: 1" in out
    # the tables
    assert "The five biggest accounts" in out and "AnnualRevenue" in out
    assert "Opportunities by stage" in out and "Closed Won" in out
    assert "Account.Name" in out
    assert re.search(r"SELECT COUNT\(\) FROM Opportunity -> 2,000", out)
    # no secrets
    assert "BEGIN" not in out and "eyJ" not in out and not re.search(r"00D\w{12,15}!", out)
    # nothing left in the temporary folder it was given
    assert list(scratch.iterdir()) == []
