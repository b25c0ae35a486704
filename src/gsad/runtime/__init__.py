"""Where the network runs: devices, the torchrun context (distributed), CPU facts (cpu) and the
choice of network path for precision="auto" (fastpath)."""
