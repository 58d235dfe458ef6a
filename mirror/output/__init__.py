"""What each command prints (one module per command, named as the command), the
progress bar, and the files written by ``--json FILE`` / ``--html FILE``. Only the
CLI calls these; no stage imports a printer."""
