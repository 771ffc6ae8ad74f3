"""Torch-free helpers every layer shares: the machine (``system``), outputs that land
whole or not at all (``atomic``), PNG figures (``figures``), progress bars (``progress``).
They import nothing of the package but ``errors``."""
