"""Training the PyTorch MLP: weighted loss for the rare fraud class, early stopping on validation PR-AUC."""

from __future__ import annotations

import copy
import logging
import math
import random
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.metrics import average_precision_score
from torch import nn

from services.models.artifacts import TorchScorer
from services.models.mlp import FraudMLP, MLPArchitecture

log = logging.getLogger(__name__)

TRAINING_THREADS = 2  # the machine (and a default training pod) has two cores


@dataclass(frozen=True)
class MLPTraining:
    hidden: list[int] = field(default_factory=lambda: [64, 32])
    dropout: float = 0.1
    max_epochs: int = 30
    patience: int = 4
    batch_size: int = 512
    learning_rate: float = 1e-3
    weight_decay: float = 1e-5


@dataclass
class TrainingHistory:
    epochs: int = 0
    best_epoch: int = 0
    best_validation_pr_auc: float = 0.0
    validation_pr_auc: list[float] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _positive_weight(labels: np.ndarray) -> float:
    positives = float(labels.sum())
    negatives = float(len(labels) - positives)
    if positives == 0:
        raise ValueError("training labels contain no fraud; the MLP cannot learn a positive class")
    # The square root of the imbalance lifts recall without pushing every score towards 1,
    # which the full ratio does (and which ruins calibration).
    return math.sqrt(negatives / positives)


def train_mlp(
    train_x: np.ndarray,
    train_y: np.ndarray,
    val_x: np.ndarray,
    val_y: np.ndarray,
    seed: int,
    config: MLPTraining | None = None,
) -> tuple[TorchScorer, TrainingHistory]:
    """Fit the MLP; returns the weights of the epoch with the best validation PR-AUC."""
    config = config or MLPTraining()
    seed_everything(seed)
    torch.set_num_threads(TRAINING_THREADS)
    x = torch.from_numpy(np.ascontiguousarray(train_x, dtype=np.float32))
    y = torch.from_numpy(np.asarray(train_y, dtype=np.float32))
    vx = torch.from_numpy(np.ascontiguousarray(val_x, dtype=np.float32))

    module = FraudMLP(MLPArchitecture(n_features=x.shape[1], hidden=list(config.hidden), dropout=config.dropout))
    module.set_scaling(x.mean(dim=0), x.std(dim=0))
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(_positive_weight(np.asarray(train_y))))
    optimiser = torch.optim.Adam(module.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(seed)

    history = TrainingHistory()
    best_state = copy.deepcopy(module.state_dict())
    for epoch in range(1, config.max_epochs + 1):
        module.train()
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), config.batch_size):
            batch = order[start : start + config.batch_size]
            optimiser.zero_grad()
            loss = loss_fn(module(x[batch]), y[batch])
            loss.backward()
            optimiser.step()
        module.eval()
        with torch.inference_mode():
            val_scores = torch.sigmoid(module(vx)).numpy()
        score = float(average_precision_score(val_y, val_scores)) if val_y.sum() else 0.0
        history.epochs = epoch
        history.validation_pr_auc.append(score)
        if score > history.best_validation_pr_auc:
            history.best_validation_pr_auc, history.best_epoch = score, epoch
            best_state = copy.deepcopy(module.state_dict())
        elif epoch - history.best_epoch >= config.patience:
            break
    log.info("mlp trained", extra={"epochs": history.epochs, "best_epoch": history.best_epoch})
    module.load_state_dict(best_state)
    return TorchScorer(module.eval()), history
