"""Offline learning: the algorithm zoo on its batched core, the batched networks, the training presets
and the trainer that turns a dataset into run records."""
