"""Losses: L_STAR, the Adaptive Wing loss behind L_AAM, and L_KD."""
from .awing_loss import AdaptiveWingLoss
from .kd_loss import HeatmapDistillationLoss
from .star_loss import STARLoss

__all__ = ["STARLoss", "AdaptiveWingLoss", "HeatmapDistillationLoss"]
