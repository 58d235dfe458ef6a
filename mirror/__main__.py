"""``python -m mirror`` runs the command-line tool."""

from mirror.cli import main

raise SystemExit(main())
