"""`digest init`: start a new blog's folder. Layer 4 (prints and exits)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path), default=Path("."), required=False)
@click.option("--blog-url", default="https://example.blogspot.com/", show_default=True,
              help="The blog's home page; its Blogger feed address is guessed from it.")
@click.option("--name", default="", help="The blog's name (default: from its address).")
@click.option("--sample", is_flag=True,
              help="A local try-out instead: the sample blog and this checkout's examples/sample-feed.xml, sent whole.")
def init(folder: Path, blog_url: str, name: str, sample: bool) -> None:
    """Write a commented config.toml, the data folder and the link secret into FOLDER."""
    from ..adapters.secret import load_or_create_secret
    from ..core.errors import InputError
    from ..core.starter import try_out_values, values_for_blog
    from ..jobs.init import init_project

    if sample:
        feed = Path("examples/sample-feed.xml").resolve()
        if not feed.is_file():
            raise InputError(f"{feed}: not found; run digest init --sample from the project's folder")
        values = try_out_values(str(feed))
    else:
        values = values_for_blog(blog_url, name)
    result = init_project(folder, values, load_or_create_secret)
    config = result.config.resolve()
    click.echo(f"Wrote {config}")
    click.echo(f"Made {result.data.resolve()}/ (the database goes here) and the link secret {result.secret.resolve()}")
    click.echo("Next:")
    click.echo(f"  1. Edit {config}: [blog] postal_address, [newsletter] from, [topics] (your blog's labels), "
               "and [smtp] for your mail relay.")
    click.echo(f"  2. Try it locally: digest mailbox --web 8025 & digest serve --config {config} "
               "(then subscribe at http://localhost:8000/subscribe and read the mail at http://127.0.0.1:8025/)")
    click.echo(f"  3. Preview the next issue: digest preview --config {config} --all --open")
