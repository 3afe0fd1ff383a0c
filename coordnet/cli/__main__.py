"""``python -m coordnet.cli``: the ``coordnet`` command."""

from coordnet.cli import main

main()
