"""edgepipe: real-time AI inference for the grid edge."""

__version__ = "0.1.0"
