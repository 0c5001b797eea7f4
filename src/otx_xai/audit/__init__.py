"""Post-training audit: saliency quality metrics per image, the sanity check, quality gates."""
