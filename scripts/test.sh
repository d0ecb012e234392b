#!/usr/bin/env bash
# Run emotrack's whole test suite on a fresh clone: installs what the tests need (Debian packages when
# run as root, the package with its train/test extras), starts a PulseAudio null sink so the real
# sounddevice capture path has a device, then runs pytest and ruff. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(libportaudio2 pulseaudio pulseaudio-utils libasound2-plugins liblo-tools fluidsynth timgm6mb-soundfont
              espeak-ng chromium poppler-utils jackd2 mono-mcs tmux openssl)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    if [[ $(id -u) -eq 0 ]]; then
        echo "installing Debian packages: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "warning: missing Debian packages (tests that need them will skip): ${missing[*]}" >&2
    fi
fi

# torch==2.13.0 is the CPU build on this platform; an unpinned torch would pull several GB of CUDA wheels.
python -m pip install -q --disable-pip-version-check torch==2.13.0 -e ".[train,test,opensmile,midi,net,ray]"

# Every process (the sink script, pytest, paplay) must see the same PulseAudio server.
export XDG_RUNTIME_DIR=/tmp/emotrack-pulse
export PULSE_SERVER=unix:/tmp/emotrack-pulse/pulse/native
export EMOTRACK_PULSE=1
if ! bash scripts/pulse-null-sink.sh; then
    echo "warning: no PulseAudio null sink; live-capture tests will skip" >&2
    unset EMOTRACK_PULSE
fi

ruff check .
python -m pytest -q -ra "$@"
