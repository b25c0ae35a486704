"""Pixels: image files (io), the one pixel <-> tensor conversion (tensors), exposure maths (exposure)
and padding and grid symmetries (geometry)."""
