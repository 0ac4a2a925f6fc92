"""The wheel a user installs holds everything the package reads at run time: every module, the
SQL models of `dbt_like_sql/` and the database migrations, so that the code location runs from
a wheel installed anywhere, not only from a checkout."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def source_tree(destination: Path) -> Path:
    """A copy of the repository's files (committed or not, but not ignored), links kept as
    links: a build from it sees none of the build folders a checkout may hold."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    )
    for name in filter(None, listed.stdout.decode().split("\0")):
        source, target = REPO_ROOT / name, destination / name
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the working tree
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)
    return destination


def test_the_wheel_holds_every_module_sql_model_and_migration(tmp_path):
    source = source_tree(tmp_path / "source")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path), "."],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr
    [wheel] = tmp_path.glob("ledger_pipeline-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        packaged = set(archive.namelist())

    expected = {
        f"ledger_pipeline/dbt_like_sql/{path.name}"
        for path in (REPO_ROOT / "dbt_like_sql").glob("*.sql")
    }
    expected |= {
        path.relative_to(REPO_ROOT).as_posix()
        for path in (REPO_ROOT / "ledger_pipeline").rglob("*")
        if path.suffix in (".py", ".mako") and "__pycache__" not in path.parts
    }
    assert len([name for name in expected if name.endswith(".sql")]) >= 6
    assert "ledger_pipeline/storage/migrations/versions/0001_create_ledger.py" in expected
    assert expected - packaged == set()
