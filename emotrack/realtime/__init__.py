"""Live path: audio capture, ring buffer, hop scheduler, smoothing, and the OSC and WebSocket outputs."""
