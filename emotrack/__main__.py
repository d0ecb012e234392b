"""``python -m emotrack`` runs the command-line interface."""

from emotrack.cli import main

raise SystemExit(main())
