"""Models raysweep registers with timm, so `timm.create_model(name)` builds them.

Importing this package registers them all: `tiny_cnn` (tests and quickstarts)
and `resse_ijcnn` (the IJCNN 2021 winner's residual SE network).
"""

from trainables.zoo import resse, tiny  # noqa: F401
