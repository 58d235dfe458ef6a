"""What a command pays for before it starts: the modules importing the CLI brings in.

A nightly ``backup`` with nothing to do takes a fraction of a second, so the
milliseconds of an import nobody uses show in its time. Each module below is
imported only where it is used, and these tests keep it so: they run a fresh
interpreter, where nothing the test suite imported yet can hide an import.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mirror.scanner.layout import detect

# Module -> what needs it: none of them is needed to parse the command line
# and start a run.
LAZY = {
    "yaml": "a generator config in YAML (mirror.scanner.layout)",
    "json": "--json, a config message, a JSON generator config",
    "difflib": "'did you mean' in a config message",
    "html": "a URL holding an HTML entity (mirror.urls)",
    "socket": "the network (mirror.keep.lock takes the host name from os.uname)",
    "secrets": "nothing: a temporary name reads os.urandom (mirror.keep.store)",
}


def imported_by(code: str) -> list[str]:
    """The modules of LAZY that a fresh interpreter has imported after ``code``."""
    check = f"{code}\nimport sys\nprint(*sorted(set({sorted(LAZY)!r}) & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True)
    return done.stdout.splitlines()[-1].split()


def test_importing_the_cli_imports_none_of_them() -> None:
    assert imported_by("import mirror.cli") == []


def test_a_yaml_config_is_still_read(tmp_path: Path) -> None:
    (tmp_path / "source" / "_posts").mkdir(parents=True)
    (tmp_path / "_config.yml").write_text("root: /blog/\npost_asset_folder: true\n")
    layout = detect(tmp_path)
    assert (layout.base_path, layout.asset_folders, layout.notes) == ("/blog", True, ())


@pytest.mark.parametrize(
    ("text", "note"),
    [
        ("root: [/blog\n", "_config.yml: cannot read it (while parsing a flow sequence)"),
        ("- a\n- b\n", "_config.yml: not a mapping of keys"),
    ],
)
def test_a_broken_yaml_config_leaves_the_defaults_with_a_note(
    tmp_path: Path, text: str, note: str
) -> None:
    (tmp_path / "source" / "_posts").mkdir(parents=True)
    (tmp_path / "_config.yml").write_text(text)
    layout = detect(tmp_path)
    assert (layout.base_path, layout.served) == ("", "source")
    assert layout.notes and layout.notes[0].startswith(note), layout.notes
