"""The package's public API stays complete and sorted."""

from __future__ import annotations

import inspect

import mirror


def test_all_is_sorted_and_complete() -> None:
    assert mirror.__all__ == sorted(mirror.__all__)
    public = {
        name
        for name, value in vars(mirror).items()
        if not name.startswith("_")
        and not inspect.ismodule(value)
        and getattr(value, "__module__", "mirror").startswith("mirror")
    }
    assert public <= set(mirror.__all__)
    for name in mirror.__all__:
        assert hasattr(mirror, name), name
