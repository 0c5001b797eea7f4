"""Perturbation and search methods, one file per method (RISE, D-RISE, AISE, ...): they score perturbed
inputs through the shared machinery of ``explain/black_box/`` (runners, masks, presets, optimizers)."""
