"""Offshoot: branchable, versioned retrieval over AI data. The SDK and CLI live here."""

__version__ = "0.1.0"

from offshoot.client import Client

__all__ = ["Client", "__version__"]
