"""Deployment: TFLite conversion, the runtime-compatibility audit, and the on-device style runner."""
from .op_audit import DEFAULT_TARGET, AuditReport, RuntimeCompatibilityError, audit, read_model
from .tflite_export import MODES, ExportedGraph, convert, export_graph
from .tflite_runner import TFLiteLandmarkModel

__all__ = ["MODES", "ExportedGraph", "convert", "export_graph", "audit", "read_model", "AuditReport",
           "RuntimeCompatibilityError", "DEFAULT_TARGET", "TFLiteLandmarkModel"]
