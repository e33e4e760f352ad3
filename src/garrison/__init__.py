"""garrison: open-source container security.

The public Python API lives in :mod:`garrison.api`; everything the CLI does goes through it.
"""

__version__ = "0.1.0"
