"""Models raysweep registers with timm, so `timm.create_model(name)` builds them.

Importing this package registers them all.
"""

from trainables.zoo import tiny  # noqa: F401
