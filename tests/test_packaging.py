"""The wheel is complete: a non-editable install, in a fresh virtual environment, renders an
issue from another directory with the templates it carries (mapped at build time from the
top-level templates/ folder into digest/templates).
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_pyproject_lists_every_package_folder() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "digest").rglob("__init__.py")}
    assert listed == folders | {"digest.templates", "digest.examples"}, "add the new package to [tool.setuptools] packages"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(out), str(ROOT)], check=True, capture_output=True, timeout=300)
    (built,) = out.glob("blog_digest-*.whl")
    return built


def test_the_wheel_carries_every_template_and_migration(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for template in (ROOT / "templates").glob("*.j2"):
        assert f"digest/templates/{template.name}" in names
    assert "digest/adapters/migrations/script.py.mako" in names
    assert {n for n in names if n.startswith("digest/adapters/migrations/versions/") and n.endswith(".py")} >= \
        {f"digest/adapters/migrations/versions/{p.name}" for p in (ROOT / "digest/adapters/migrations/versions").glob("0*.py")}


def test_an_installed_wheel_previews_from_another_directory(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    fresh_python = venv / "bin" / "python"
    site = subprocess.run([str(fresh_python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    # The dependencies come from the test environment's site-packages, added as a plain
    # path: its .pth files (our editable install among them) are not run from there.
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(fresh_python), "install", "--quiet", "--no-deps",
                    "--no-index", str(wheel)], check=True, capture_output=True, timeout=300)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    config = tmp_path / "config.toml"
    config.write_text((ROOT / "config.toml").read_text().replace(
        'url = "examples/sample-feed.xml"', f'url = "{ROOT / "examples" / "sample-feed.xml"}"'))

    where = subprocess.run([str(fresh_python), "-c", "import digest.core.render as r; print(r.BUILTIN_TEMPLATES)"],
                           cwd=elsewhere, check=True, capture_output=True, text=True).stdout.strip()
    assert where == str(Path(site) / "digest" / "templates"), "the installed package must use its own templates"
    run = subprocess.run([str(venv / "bin" / "digest"), "preview", "--all", "--config", str(config), "--out", "out"],
                         cwd=elsewhere, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    html = (elsewhere / "out" / "issue.html").read_text("utf-8")
    assert "The Wise Job Search" in html and "Have a question?" in html
    # The try-out from the installed package, outside the checkout: its own sample feed.
    made = subprocess.run([str(venv / "bin" / "digest"), "init", "tryout", "--sample"], cwd=elsewhere,
                          capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    assert str(Path(site) / "digest" / "examples" / "sample-feed.xml") in (elsewhere / "tryout" / "config.toml").read_text()
    tried = subprocess.run([str(venv / "bin" / "digest"), "preview", "--config", "tryout/config.toml", "--out", "out2"],
                           cwd=elsewhere, capture_output=True, text=True, timeout=120)
    assert tried.returncode == 0 and "14 posts" in tried.stdout, tried.stdout + tried.stderr
