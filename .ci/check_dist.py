"""Check the built sdist and wheel (issue 19): both carry the LICENSE; the wheel carries the
package with py.typed and no tests; the sdist carries every file git tracks under sfjwt_ext/,
tests/ (conftest, helpers, reliability/, the npm manifests), docs/, notebooks/ and benchmarks/,
and nothing from node_modules.  Usage: python .ci/check_dist.py DIST_FOLDER"""
from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path


def main(folder: str) -> int:
    dist = Path(folder)
    sdists, wheels = sorted(dist.glob("*.tar.gz")), sorted(dist.glob("*.whl"))
    if len(sdists) != 1 or len(wheels) != 1:
        print(f"expected one sdist and one wheel in {dist}, found {sdists + wheels}")
        return 1
    with tarfile.open(sdists[0]) as tar:
        sdist = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    with zipfile.ZipFile(wheels[0]) as whl:
        wheel = set(whl.namelist())
    tracked = subprocess.run(["git", "ls-files", "sfjwt_ext", "tests", "docs", "notebooks", "benchmarks"],
                             capture_output=True, text=True, check=True).stdout.split()
    problems = [f"sdist lacks {name}" for name in ["LICENSE", "README.md", "setup.cfg", *tracked]
                if name not in sdist]
    problems += [f"sdist carries {name}" for name in sorted(sdist) if "node_modules" in name]
    if not any(name.endswith(".dist-info/licenses/LICENSE") for name in wheel):
        problems.append("wheel lacks the LICENSE")
    if "sfjwt_ext/py.typed" not in wheel:
        problems.append("wheel lacks sfjwt_ext/py.typed")
    problems += [f"wheel carries {name}" for name in sorted(wheel) if name.startswith("tests/")]
    for line in problems[:50]:
        print(line)
    print(f"sdist: {len(sdist)} files, wheel: {len(wheel)} files, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
