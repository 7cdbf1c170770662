"""omarbench: a reproducible offline multi-agent RL benchmark (the OMAR study, on a CPU)."""
__version__ = "0.1.0"
