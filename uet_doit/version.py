"""The version of uet-doit, in a leaf every layer may read (bundle stamps, `uet --version`)."""

__version__ = "0.1.0"
