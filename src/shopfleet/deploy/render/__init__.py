"""Pure renderers: the topology in, deployment files and text out; no processes, no I/O."""
