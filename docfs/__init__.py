"""docfs: mount document repositories as a FUSE filesystem."""

__version__ = "0.1.0"
