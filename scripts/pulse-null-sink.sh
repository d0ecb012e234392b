#!/usr/bin/env bash
# Start a private PulseAudio daemon with a null sink, so the real sounddevice/PortAudio capture path can be
# tested on machines without a sound card (CI, containers). Idempotent: exits 0 at once if it already runs.
#
# Usage (the SAME environment must be exported for every process that talks to the daemon: this script,
# pytest, paplay, `emotrack run`):
#
#     export XDG_RUNTIME_DIR=/tmp/emotrack-pulse
#     export PULSE_SERVER=unix:/tmp/emotrack-pulse/pulse/native
#     bash scripts/pulse-null-sink.sh          # start (installs packages first if missing and run as root)
#     python -m pytest tests/test_capture.py
#     bash scripts/pulse-null-sink.sh --stop   # stop the daemon
#
# What it sets up (see shared/specs/probe.md section 3a):
# * null sink `emotrack_sink`, 44100 Hz, 2 channels (stereo): the rate of the bundled example recording and of
#   most devices, so neither pulse nor the capture stream resamples (a rate mismatch costs pulse's speex
#   resampler ~12 dB SNR); stereo so the live test also exercises the tracker's downmix as a real device would.
# * default sink = emotrack_sink, default source = emotrack_sink.monitor, so PortAudio's ALSA device `pulse`
#   (from libasound2-plugins) records whatever is played with `paplay --device=emotrack_sink`.
# * anonymous auth on the private socket (the directory is mode 700), so no cookie needs sharing between users.
#
# PortAudio enumerates devices when sounddevice is imported: start the daemon BEFORE importing it.
# Overrides: EMOTRACK_SINK (sink name), EMOTRACK_SINK_RATE, EMOTRACK_SINK_CHANNELS.
set -u

SINK=${EMOTRACK_SINK:-emotrack_sink}
RATE=${EMOTRACK_SINK_RATE:-44100}
CHANNELS=${EMOTRACK_SINK_CHANNELS:-2}
PACKAGES="libportaudio2 pulseaudio pulseaudio-utils libasound2-plugins"

export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/emotrack-pulse}
export PULSE_SERVER=${PULSE_SERVER:-unix:$XDG_RUNTIME_DIR/pulse/native}
LOG=$XDG_RUNTIME_DIR/pulse.log

die() {
    echo "pulse-null-sink: error: $*" >&2
    exit 1
}

pa() {  # pactl that can never hang on a dead or wedged daemon
    timeout 5 pactl "$@"
}

if [ "${1:-}" = "--stop" ]; then
    if pa info >/dev/null 2>&1; then
        pa exit || true
        echo "pulse-null-sink: stopped the daemon at $PULSE_SERVER"
    else
        echo "pulse-null-sink: no daemon running at $PULSE_SERVER"
    fi
    exit 0
fi

# 1. packages (only what is missing; installing needs root)
missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    [ "$(id -u)" = 0 ] || die "missing packages:$missing (install them as root: apt-get install$missing)"
    echo "pulse-null-sink: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    timeout 600 apt-get update -qq || die "apt-get update failed"
    # shellcheck disable=SC2086
    timeout 600 apt-get install -y -qq --no-install-recommends $missing || die "apt-get install$missing failed"
fi

ensure_sink() {
    if ! pa list short sinks 2>/dev/null | awk '{print $2}' | grep -qx "$SINK"; then
        pa load-module module-null-sink "sink_name=$SINK" "rate=$RATE" "channels=$CHANNELS" >/dev/null \
            || die "could not load module-null-sink $SINK"
    fi
    pa set-default-sink "$SINK" || die "could not set the default sink"
    pa set-default-source "$SINK.monitor" || die "could not set the default source"
}

# 2. already running? (make sure the sink and defaults are there, then stop)
if pa info >/dev/null 2>&1; then
    ensure_sink
    echo "pulse-null-sink: already running at $PULSE_SERVER (sink $SINK)"
    exit 0
fi

# 3. start the daemon. --daemonize returns once the daemon is up or has failed; timeout guards a wedged start.
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR" || die "cannot create $XDG_RUNTIME_DIR"
rm -f "$XDG_RUNTIME_DIR/pulse/pid"  # a stale pid file from a killed daemon would block the start
# As root pulseaudio warns "This program is not intended to be run as root" (and about cookies/D-Bus): harmless.
timeout 20 pulseaudio --daemonize=yes --exit-idle-time=-1 --disallow-exit=no -n \
    --load="module-native-protocol-unix auth-anonymous=1 socket=$XDG_RUNTIME_DIR/pulse/native" \
    --load="module-null-sink sink_name=$SINK rate=$RATE channels=$CHANNELS" \
    --log-target="file:$LOG" >/dev/null 2>&1
status=$?

for _ in $(seq 1 50); do  # up to ~10 s for the socket to answer
    pa info >/dev/null 2>&1 && break
    sleep 0.2
done
if ! pa info >/dev/null 2>&1; then
    echo "pulse-null-sink: error: the PulseAudio daemon did not start (exit status $status); last log lines:" >&2
    tail -n 20 "$LOG" >&2 2>/dev/null || echo "  (no log at $LOG)" >&2
    exit 1
fi
ensure_sink
echo "pulse-null-sink: running at $PULSE_SERVER: sink $SINK ($RATE Hz, $CHANNELS ch), default source $SINK.monitor"
