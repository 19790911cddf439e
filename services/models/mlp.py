"""The PyTorch fraud model: a small MLP that standardises its own inputs."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn


@dataclass(frozen=True)
class MLPArchitecture:
    """Everything needed to rebuild the network before loading its weights."""

    n_features: int
    hidden: list[int] = field(default_factory=lambda: [64, 32])
    dropout: float = 0.1

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class FraudMLP(nn.Module):
    """Raw feature vector in, fraud logit out.

    The input mean/std live in buffers, so the saved state_dict carries the scaling
    and a caller never has to apply it separately (no train/serve skew).
    """

    input_mean: torch.Tensor
    input_std: torch.Tensor

    def __init__(self, arch: MLPArchitecture) -> None:
        super().__init__()
        self.arch = arch
        self.register_buffer("input_mean", torch.zeros(arch.n_features))
        self.register_buffer("input_std", torch.ones(arch.n_features))
        layers: list[nn.Module] = []
        width = arch.n_features
        for size in arch.hidden:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(arch.dropout)]
            width = size
        layers.append(nn.Linear(width, 1))
        self.body = nn.Sequential(*layers)

    def set_scaling(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.input_mean.copy_(mean)
        # A constant column would divide by zero; leave it unscaled instead.
        self.input_std.copy_(torch.where(std > 1e-12, std, torch.ones_like(std)))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        scaled = (features - self.input_mean) / self.input_std
        return self.body(scaled).squeeze(-1)
