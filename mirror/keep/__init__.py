"""What is kept on disk: the state (one module per table: ``state`` for URLs,
``journal`` for rewrites), the mirror's files (``store``: layout, atomic files;
``incoming`` and ``commit``: a download on its way into place), posts written
atomically (``postfile``), the site lock, and ``site``: the one session a command
opens."""
