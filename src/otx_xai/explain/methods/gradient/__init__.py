"""Gradient methods, one file per method (the Grad-CAM family, I-GOS)."""
