"""The package keeps its shape: SQL only in the modules that own the tables.

(The layers themselves are import-linter's contracts in pyproject.toml, run by
./scripts/test.)"""

from __future__ import annotations

import re
from pathlib import Path

import mirror

PACKAGE = Path(mirror.__file__).parent
TABLE_MODULES = {
    "keep/db.py", "keep/state.py", "keep/journal.py", "keep/thumbrows.py", "keep/published.py",
    "keep/scancache.py",
}  # fmt: skip
SQL = re.compile(r"\.execute(many|script)?\(|\b(SELECT|INSERT|UPDATE|DELETE)\s+\w")


def test_sql_is_written_only_where_its_table_is_owned() -> None:
    outside = {
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if SQL.search(path.read_text(encoding="utf-8"))
    } - TABLE_MODULES
    assert outside == set()


def test_the_check_finds_sql() -> None:
    assert SQL.search('state.connection.execute("SELECT 1")')
    assert SQL.search("DELETE FROM thumbnails WHERE path = ?")
    assert not SQL.search("select the posts, update the mirror")
