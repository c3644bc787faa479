"""The lifecycle benchmark: wheeldock's paths and the hand-made baselines measured on one stack."""
