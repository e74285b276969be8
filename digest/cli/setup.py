"""`digest init`: start a new blog's folder. Layer 4 (prints and exits)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path), default=Path("."), required=False)
@click.option("--blog-url", default=None, metavar="URL",
              help="The blog's home page; its Blogger feed address is made from it, its title and Contact page read "
                   "from its feeds. [default: https://example.blogspot.com/]")
@click.option("--name", default="", help="The blog's name (default: the title its feed gives).")
@click.option("--sample", is_flag=True,
              help="A local try-out instead: the sample blog and the sample feed the package carries, sent whole.")
def init(folder: Path, blog_url: str | None, name: str, sample: bool) -> None:
    """Write a commented config.toml, the data folder and the link secret into FOLDER."""
    from ..adapters.fetch import fetch_feed
    from ..adapters.secret import load_or_create_secret
    from ..core.starter import guessed_name, try_out_values, values_for_blog
    from ..jobs.init import init_project, look_up_blog, sample_feed

    notes: list[str] = []
    if sample:
        values = try_out_values(str(sample_feed()))
    else:
        url = blog_url or "https://example.blogspot.com/"
        facts = look_up_blog(url, fetch_feed) if blog_url and not (folder / "config.toml").exists() else None
        if not name and facts is not None and facts.title:
            name = facts.title
        elif not name:
            name = guessed_name(url)
            why = f"its feed could not be read ({facts.problem})" if facts and facts.problem else "no --blog-url"
            notes.append(f"Named the blog {name!r} from its address ({why}): give its name with --name, "
                         "or set [blog] name.")
        values = values_for_blog(url, name, contact_url=facts.contact_url if facts else "")
    result = init_project(folder, values, load_or_create_secret)
    config = result.config.resolve()
    digest = _invoked_as()
    click.echo(f"Wrote {config}")
    click.echo(f"Made {result.data.resolve()}/ (the database goes here) and the link secret {result.secret.resolve()}")
    for note in notes:
        click.echo(note)
    if not sample:
        if values.question_url:
            click.echo(f"The newsletter's \"Have a question?\" button leads to the blog's Contact page, "
                       f"{values.question_url} ([question] url).")
        else:
            click.echo("Found no Contact page on the blog: the newsletter leaves its \"Have a question?\" box out until "
                       "you set [question] url (your Contact page, or the /ask page of digest serve) or [question] email.")
    click.echo("Next:")
    click.echo(f"  1. Edit {config}: [blog] postal_address, [newsletter] from, [topics] (your blog's labels), "
               "[question] (where readers ask), and [smtp] for your mail relay.")
    click.echo(f"  2. Try it locally: {digest} mailbox --web 8025 & {digest} serve --config {config} "
               "(then subscribe at http://127.0.0.1:8000/subscribe and read the mail at http://127.0.0.1:8025/)")
    click.echo(f"  3. Preview the next issue: {digest} preview --config {config} --all --open")


def _invoked_as() -> str:
    """The command as this person runs it: `digest` when that is on PATH, else the path they
    typed (the README's install: .venv/bin/digest)."""
    import os
    import shutil
    import sys

    typed = sys.argv[0]
    if os.path.basename(typed) != "digest":
        return ".venv/bin/digest"  # python -m digest, or a test: the README's install
    on_path = shutil.which("digest")
    if on_path and os.path.exists(typed) and os.path.samefile(on_path, typed):
        return "digest"
    return typed
