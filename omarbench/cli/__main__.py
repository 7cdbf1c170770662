"""``python -m omarbench.cli``: the same as the ``omarbench`` command."""

from omarbench.cli import main

main()
