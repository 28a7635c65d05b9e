"""Model builders of the suites, in plain PyTorch with seeded random weights."""
