"""The `digest` command line. Layer 4: the only package that prints and exits.

`--config` and `--debug` are accepted before the subcommand's name and after it, on every
command: click options whose callbacks write into the one CLIState in ctx.obj (no argv
searching). Every DigestError becomes one `Error: ...` line and its exit code; --debug
shows the traceback instead.
"""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

from ..core.config import Config, read_config
from ..core.errors import DigestError


def _wall_clock() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class CLIState:
    """What the options common to every command set; the config is read once, on first use.
    `clock` is the one source of "now" for the commands (main() takes another, e.g. a test's)."""

    config_path: Path | None = None
    debug: bool = False
    clock: Callable[[], datetime] = _wall_clock
    _config: Config | None = field(default=None, repr=False)

    def config(self) -> Config:
        if self._config is None:
            path = self.config_path or Path(os.environ.get("DIGEST_CONFIG", "config.toml"))
            self._config = read_config(path, os.environ)
        return self._config


def _state(ctx: click.Context) -> CLIState:
    return ctx.ensure_object(CLIState)


def _set_config(ctx: click.Context, param: click.Parameter, value: Path | None) -> None:
    if value is not None:
        _state(ctx).config_path = value


def _set_debug(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        _state(ctx).debug = True


def common_options() -> list[click.Parameter]:
    """--config and --debug, new objects for each command that gets them."""
    return [
        click.Option(["--config", "config_path"], type=click.Path(dir_okay=False, path_type=Path), default=None,
                     expose_value=False, callback=_set_config,
                     help="config.toml to use (default: ./config.toml or $DIGEST_CONFIG)."),
        click.Option(["--debug"], is_flag=True, expose_value=False, callback=_set_debug,
                     help="Show the traceback of errors."),
    ]


def pass_config(func: Any) -> Any:
    """Hand a command the Config that --config names (read on first use)."""
    @click.pass_context
    @functools.wraps(func)
    def wrapper(ctx: click.Context, *args: Any, **kwargs: Any) -> Any:
        return func(_state(ctx).config(), *args, **kwargs)

    return wrapper


def pass_wiring(func: Any) -> Any:
    """Hand a command the Config and the process's Wiring (cli/wiring.py), closed after it."""
    @click.pass_context
    @functools.wraps(func)
    def wrapper(ctx: click.Context, *args: Any, **kwargs: Any) -> Any:
        from .wiring import Wiring

        config = _state(ctx).config()
        with Wiring(config, clock=_state(ctx).clock) as wiring:
            return func(config, wiring, *args, **kwargs)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="blog-digest")
def cli() -> None:
    """Turn a blog's feed into a weekly email newsletter."""


def current_clock() -> Callable[[], datetime]:
    """The clock main() was given, for the running command. Call it in the command's own
    thread (click's context is per thread) and hand the clock to any thread it starts."""
    ctx = click.get_current_context(silent=True)
    state = ctx.find_object(CLIState) if ctx is not None else None
    return state.clock if state is not None else _wall_clock


def now() -> datetime:
    """The time of the running command, from the clock main() was given."""
    return current_clock()()


def _register() -> None:
    from . import desk, doctor, inbox, issue, questions, serve, setup, subscribers

    for command in (issue.preview, issue.send, issue.history, issue.status, serve.serve, serve.snippet,
                    serve.mailbox, setup.init, subscribers.subscribers, inbox.inbox, questions.questions,
                    doctor.doctor, desk.proof, desk.hold, desk.approve):
        cli.add_command(command)
    _give_common_options(cli)


def _give_common_options(command: click.Command) -> None:
    command.params.extend(common_options())
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _give_common_options(sub)


_register()


def _cache_templates() -> None:
    """Compiled templates kept between runs (adapters/template_cache.py), once per process;
    the folder is made when the first template is, not by a command that renders none."""
    from ..adapters.template_cache import bytecode_cache
    from ..core.render import use_bytecode_cache

    use_bytecode_cache(bytecode_cache)


def main(argv: Sequence[str] | None = None, *, clock: Callable[[], datetime] | None = None) -> None:
    """Run the command line; turn errors into one line and an exit code. `clock` gives the
    commands their "now" (the wall clock unless a caller, such as a test, chooses one)."""
    args = list(sys.argv[1:] if argv is None else argv)
    state = CLIState(clock=clock or _wall_clock)
    _cache_templates()
    try:
        cli.main(args=args, prog_name="digest", standalone_mode=False, obj=state)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except DigestError as exc:
        if state.debug:
            traceback.print_exc()
        click.echo(f"Error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
