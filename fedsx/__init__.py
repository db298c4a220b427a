"""fedsx: an ActivityPub federation kernel for Django."""

__version__ = "0.1.0"
