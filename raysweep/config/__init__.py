"""Sweep-file schema, search domains and loading; imports neither Ray nor torch."""

from raysweep.config.domains import Domain
from raysweep.config.load import Sweep, load_sweep
from raysweep.config.schema import SweepConfig

__all__ = ["Domain", "Sweep", "SweepConfig", "load_sweep"]
