"""Files shipped inside the package: bundled models and the example recording."""

from pathlib import Path

ASSETS = Path(__file__).resolve().parent
MODEL_DIR = ASSETS / "models"
EXAMPLE_AUDIO = ASSETS / "audio" / "example.ogg"
"""65 s CC0 collage, calm then energetic (see audio/LICENSE.md)."""
