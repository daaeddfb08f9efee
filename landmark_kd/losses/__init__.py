"""Losses: L_STAR, the Adaptive Wing loss behind L_AAM, and L_KD (on heatmaps, and on the head's features)."""
from .awing_loss import AdaptiveWingLoss
from .feature_kd_loss import ChannelDistillationLoss
from .kd_loss import HeatmapDistillationLoss
from .star_loss import STARLoss

__all__ = ["STARLoss", "AdaptiveWingLoss", "HeatmapDistillationLoss", "ChannelDistillationLoss"]
