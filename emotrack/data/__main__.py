"""``python -m emotrack.data --data-root ../shared/data --cache-dir DIR``: render MIDI sets, write indexes."""

from emotrack.data.cache import main

raise SystemExit(main())
