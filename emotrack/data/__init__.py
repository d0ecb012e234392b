"""Emotion-labelled music data sets as :class:`Clip` records on the 0.5 s label grid.

Loaders take a data path and return clips (4Q, VGMIDI, EMOPIA, DEAM, PMEmo); MIDI sets are rendered
to 16 kHz mono wav into a user-given cache; splits keep each artist, piece or song on one side.
Training-time only: needs scikit-learn (splits) and the ``fluidsynth`` command (rendering).
"""

from emotrack.data.cache import DATASETS, index_path, load_dataset, load_index, prepare, write_index
from emotrack.data.clips import (
    Clip,
    DataError,
    hop_end_times,
    n_hops,
    quadrant_to_va,
    time_to_hop,
    va_to_quadrant,
)
from emotrack.data.deam import load_deam
from emotrack.data.emopia import load_emopia
from emotrack.data.fourq import load_4q, normalize_artist
from emotrack.data.pmemo import load_pmemo
from emotrack.data.render import MODEL_SR, find_soundfont, render_clips, render_midi, render_path
from emotrack.data.splits import assert_group_disjoint, emopia_official_split, grouped_kfold, holdout, strata
from emotrack.data.vgmidi import load_vgmidi, measures_to_hops

__all__ = [
    "DATASETS",
    "MODEL_SR",
    "Clip",
    "DataError",
    "assert_group_disjoint",
    "emopia_official_split",
    "find_soundfont",
    "grouped_kfold",
    "hop_end_times",
    "holdout",
    "index_path",
    "load_4q",
    "load_dataset",
    "load_deam",
    "load_emopia",
    "load_index",
    "load_pmemo",
    "load_vgmidi",
    "measures_to_hops",
    "n_hops",
    "normalize_artist",
    "prepare",
    "quadrant_to_va",
    "render_clips",
    "render_midi",
    "render_path",
    "strata",
    "time_to_hop",
    "va_to_quadrant",
    "write_index",
]
