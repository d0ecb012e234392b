"""Would pitch-shifted copies of the training clips lift 4Q? A linear probe, before any training.

Why: 4Q is the target the default misses by the most (72.9 % weighted F1 against 74 %) after eight rounds of
changes to the head, its losses and its inputs, all of which trained on the same 720 development clips (529
artists). More data is the lever not tried. Audio-level augmentation is cheap on the CPU because the front end is
frozen: a shifted copy costs a pitch shift and one front-end pass (about 1 s per 30 s clip). A shift of a semitone
or two changes key and register, not the mood a listener hears, so the copy keeps its clip's quadrant; musicnn and
the tonal statistics see it as new input (the mean frame of a clip and its +1 semitone copy correlate at about
0.7).

Rows: the default's front-end frame (:class:`~emotrack.frontends.musicnn_tonal.MusicnnTonal`), each clip's mean
over its hops, read out by multinomial logistic regression as ``layer_probe`` does (artist-grouped stratified
5-fold, seed 0, penalty chosen by an artist-grouped inner 4-fold CV inside each training part). Test clips are
always the originals; the augmented rows add the training clips' shifted copies to each training part only
(a copy keeps its artist, so the inner CV never splits a clip from its copies). A probe, not a shipped file: a
row well above ``originals`` says the augmentation is worth a full CV of the recipe (about 65 min on 2 cores
per seed); rows at or below it say more shifted data is not what caps 4Q.

Usage::

    python -m bench.accuracy.augment_probe --data-root ../shared/data --render-cache /tmp/emocache \\
        --cache /tmp/emo/cache --out bench/results/augment_probe.json
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bench.accuracy.dynamics_probe import write_probe
from bench.accuracy.layer_probe import clip_means, fourq_parser, probe, probe_document

SHIFTS = (-2, -1, 1, 2)
"""Semitones of the shifted copies; each row of the probe uses a subset."""

ROWS = {"originals": (), "+ ±1 semitone": (-1, 1), "+ ±1, ±2 semitones": SHIFTS}


def fourq_shifted(data_root: str, render_cache: str, cache_dir: str, model: str, workers: int) -> tuple[
        list[Any], Any, dict[int, np.ndarray]]:
    """4Q's clips, the model card, and per shift (0 = the original) the clips' mean frames ``[n_clips, F]``."""
    from emotrack.data.cache import load_index, prepare
    from emotrack.inference import ModelRunner
    from emotrack.training.features import FeatureCache

    prepare(data_root, render_cache, ["4q"])
    clips = load_index(render_cache, "4q")
    paths = [c.audio_path for c in clips]
    card = ModelRunner(model).card
    name, params = card.frontend["name"], card.frontend["params"]
    cache = FeatureCache(cache_dir, name, params)
    cache.build(paths, workers=workers)
    means = {0: clip_means(cache.load_all(paths))}
    for n in SHIFTS:  # the training path's own cache of shifted copies (FeatureCache.build(shift=n))
        cache.build(paths, workers=workers, shift=n)
        means[n] = clip_means([cache.load(p, n) for p in paths])
    return clips, card, means


def main(argv: Sequence[str] | None = None) -> None:
    args = fourq_parser(__doc__, "augment_probe").parse_args(argv)  # shifted copies go in --cache too

    from emotrack.data.splits import grouped_kfold

    clips, card, means = fourq_shifted(args.data_root, args.render_cache, args.cache, args.model, args.workers)
    folds = grouped_kfold(clips, k=5, seed=0)
    rows = {name: {**probe(means[0], clips, folds, copies=[means[n] for n in shifts]), "shifts": list(shifts)}
            for name, shifts in ROWS.items()}
    result = probe_document(argv, __spec__.name, card, clips, rows)
    write_probe(result, args.out, markdown(result))


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Augmentation probe: do pitch-shifted training copies lift 4Q? (linear, artist-grouped 5-fold)",
        "",
        f"`{result['command']}`",
        "",
        f"{result['date']}, {result['machine']['cpu_model']}. A linear probe, **not a shipped file**: multinomial "
        f"logistic regression on each clip's mean front-end frame of {result['model']} "
        f"({result['frontend']['name']}), {result['clips']} clips of {result['artists']} artists, penalty chosen by "
        "an artist-grouped inner 4-fold CV inside each training part (scored on originals only). Test clips are "
        "the originals; shifted copies (librosa `pitch_shift`) join each training part only. For scale: the "
        "default's own CV (the trained model, streamed) is 72.9 %.",
        "",
        "| training part | 4Q weighted F1 (fold mean ± std) | per fold | penalties chosen (C) |",
        "|---|---|---|---|",
    ]
    for name, r in result["rows"].items():
        cs = ", ".join(f"{c:g}" for c in r["chosen_C"])
        folds = ", ".join(f"{100 * s:.1f}" for s in r["per_fold"])
        f1 = f"{100 * r['weighted_f1_mean']:.1f} ± {100 * r['weighted_f1_std']:.1f} %"
        lines.append(f"| {name} | {f1} | {folds} | {cs} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
