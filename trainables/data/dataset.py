"""The torch `Dataset` over a subset of samples, with its transform.

Items are `(image, target, index)`: the index travels with every prediction
so that validation metrics can be gathered exactly across DDP workers (the
padding a `DistributedSampler` adds repeats indices, which are dropped).
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import torch
from torch.utils.data import Dataset

from trainables.data.samples import Samples


class SampleDataset(Dataset):
    def __init__(self, samples: Samples, indices: np.ndarray, transform: Optional[Callable] = None):
        self.samples = samples
        self.indices = np.asarray(indices)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        idx = int(self.indices[i])
        image = self.samples.images.load(idx)
        if self.transform is not None:
            x = self.transform(image)
        else:
            x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div_(255.0)
        label = self.samples.labels[idx]
        y = torch.as_tensor(label, dtype=torch.float32 if self.samples.multilabel else torch.long)
        return x, y, idx
