"""The local operator: start, stop, scale, reload and watch a run on this machine."""
