"""Black-box explain methods: RISE and AISE (model-agnostic, perturbation-based), any backend."""
