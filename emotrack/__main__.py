"""``python -m emotrack`` runs the command-line interface."""

try:
    from emotrack.cli import main
except KeyboardInterrupt:  # Ctrl-C while the package is still importing: an interrupt, not a crash
    raise SystemExit(130) from None

raise SystemExit(main())
