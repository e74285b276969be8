"""`digest init`: a new blog's folder with a commented config.toml, the data folder and
the link secret. A job (layer 3): writes files, never over existing ones.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..core.config import Config, read_config
from ..core.errors import ConfigError, InputError
from ..core.render import make_environment
from ..core.starter import StarterValues, render_config


@dataclass(frozen=True)
class InitResult:
    config: Path
    data: Path
    secret: Path


def init_project(folder: Path, values: StarterValues, make_secret: Callable[[Config], str]) -> InitResult:
    """Write folder/config.toml, folder/subscribers/ (with its README) and the secret file
    (`make_secret`: adapters/secret.py's load_or_create_secret, handed in by the CLI)."""
    config_path = folder / "config.toml"
    if config_path.exists():
        raise InputError(f"{config_path}: already exists; digest init never overwrites a config (choose another folder)")
    data = folder / "subscribers"
    try:
        data.mkdir(parents=True, exist_ok=True)
        readme = data / "README.md"
        if not readme.exists():
            readme.write_text(make_environment().get_template("subscribers_readme.md.j2").render(), encoding="utf-8")
        text = render_config(values)
        with config_path.open("x", encoding="utf-8") as out:  # "x": a config made meanwhile is never replaced
            out.write(text)
    except FileExistsError as exc:
        raise InputError(f"{config_path}: already exists; digest init never overwrites a config") from exc
    except OSError as exc:
        raise InputError(f"{folder}: cannot write there: {exc.strerror}") from exc
    environ = dict(os.environ)
    try:
        config = read_config(config_path, environ)
    except ConfigError:  # a value it was given (--blog-url) is refused: no config that does not load stays behind
        config_path.unlink(missing_ok=True)
        raise
    if config.web.secret:  # the variable is set in this shell: init writes the secret file all the same
        environ.pop(config.web.secret_env, None)
        config = read_config(config_path, environ)
    make_secret(config)
    return InitResult(config_path, data, Path(config.web.secret_file))
