"""Enhancing an image: the public Enhancer (enhancer), a sampler run on an image (trajectories,
tiling, detail), where outputs go (outputs) and several processes (parallel)."""
