"""Training: the data mixture, the optimisation loop, logging and checkpoints."""
