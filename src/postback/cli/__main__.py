"""``python -m postback.cli``: the same command as ``postback``."""

from postback.cli import main

main()
