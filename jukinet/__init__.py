"""JukiNet: an open implementation of a national resident-identity network."""

__version__ = "0.1.0"
