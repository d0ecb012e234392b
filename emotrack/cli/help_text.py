"""The descriptions and examples ``emotrack COMMAND --help`` shows after the options."""

from __future__ import annotations

COMMAND_HELP: dict[str, tuple[str | None, str]] = {
    "run": (None, """\
examples:
  emotrack run                                   # default input (or the bundled example), OSC to 127.0.0.1:9000
  emotrack run --file set.wav --loop --osc 192.168.1.20:9000
  emotrack run --device "USB Audio" --ws-host 0.0.0.0 --csv show.csv"""),
    "analyze": (None, """\
examples:
  emotrack analyze song.mp3 --out curves/
  emotrack analyze music/ --out curves/ --jobs 4   # a folder, searched recursively
  emotrack analyze a.wav b.flac --out curves/ --model mca -q"""),
    "devices": ("List the audio input devices PortAudio sees: index, name, host API, input channels and default "
                "sample rate; * marks the default input. Give an index or part of a name to `run --device`.", """\
examples:
  emotrack devices
  emotrack run --device 3
  emotrack devices --json"""),
    "models": ("List the models emotrack can run: name and version (* the default), what it reads (its front end), "
               "CPU cost per hop where its card records it, 4Q weighted F1 of its recipe's grouped cross-validation "
               "and the data sets it was trained on; personal models (`emotrack personalize`) after the bundled ones.",
               """\
examples:
  emotrack models
  emotrack models --json                         # every card's fields
  emotrack run --model mca                       # run another one"""),
    "export": ("Export a training checkpoint (.pt) to an ONNX model with emotrack's metadata; it refuses to write "
               "unless ONNX Runtime matches PyTorch on real audio. Needs the train extra.", """\
examples:
  emotrack export runs/mca/final_best.pt -o my_model.onnx
  emotrack export runs/mca/final_best.pt --fp16   # float16 graph for GPUs
  emotrack run --model my_model.onnx"""),
    "train": (None, """\
examples:
  emotrack train mca --data-root DATA --datasets 4q --frontend logmel_tonal --out runs/mca
  emotrack train mca --data-root DATA --datasets 4q --hparams '{"seed": 1}' --out runs/mca-s1   # another seed
  emotrack train mca --data-root DATA --datasets 4q --ensemble runs/mca runs/mca-s1 -o runs/ens --export ens.onnx"""),
    "evaluate": (None, """\
examples:
  emotrack evaluate mca --data-root DATA --datasets 4q
  emotrack evaluate runs/multi/final_best.pt --data-root DATA --datasets vgmidi emopia -o metrics.json"""),
    "data": ("Data preparation for training: `data prepare` renders the MIDI data sets (VGMIDI, EMOPIA) to audio "
             "once and indexes every clip, so that train and evaluate start at once.", """\
examples:
  emotrack data prepare --data-root DATA --cache .cache/features"""),
    "data prepare": ("Render the MIDI data sets (VGMIDI, EMOPIA) to audio with a General MIDI soundfont, once, and "
                     "index every clip of the data sets in --datasets; later runs reuse both.", """\
examples:
  emotrack data prepare --data-root DATA --cache .cache/features
  emotrack data prepare --data-root DATA --datasets vgmidi --soundfont FluidR3_GM.sf2"""),
    "personalize": (None, """\
examples:
  emotrack annotate song.ogg --out my_curve.csv
  emotrack personalize --audio song.ogg --labels my_curve.csv
  emotrack run --model mca-musicnn-personal-1a2b3c4d   # the name it printed"""),
    "annotate": (None, """\
examples:
  emotrack annotate song.ogg --out my_curve.csv
  emotrack annotate song.ogg --out my_curve.csv --once --no-browser"""),
    "meta-train": (None, """\
examples:
  emotrack meta-train runs/mca-musicnn/final_best.pt --data-root DATA -o runs/meta/meta.pt
  emotrack meta-train runs/cv/final_best.pt --splits runs/cv/splits.json --fold 2 -o runs/meta/fold2.pt
  emotrack export runs/meta/meta.pt -o meta.onnx"""),
    "sessions": (None, """\
examples:
  emotrack run --session ~/emotrack-sessions --client P07
  emotrack sessions ~/emotrack-sessions
  emotrack sessions ~/emotrack-sessions --json"""),
    "report": (None, """\
examples:
  emotrack report ~/emotrack-sessions -o latest.html
  emotrack report ~/emotrack-sessions --session 3 -o session3.pdf"""),
}
"""Per command: a description where the parser has none (None: keep its own) and the examples shown after the
options by ``--help``."""
