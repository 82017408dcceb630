"""The one exception type of jukinet.hsm."""


class HsmError(Exception):
    """A token problem with a human diagnostic (wrong PIN, missing token or key, SoftHSM not installed)."""
