"""wsd: find, sort and flag whale and dolphin sounds in large recording archives."""

__version__ = "0.1.0"
