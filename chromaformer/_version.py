"""The package's version, in one place: the root, the engine, checkpoints and the
exporter import it from here (none of them imports the package root)."""

__version__ = "0.1.0"
