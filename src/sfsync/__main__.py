"""``python -m sfsync`` runs the command line."""

from sfsync.cli.main import main

main()
