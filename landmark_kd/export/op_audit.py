"""Read a .tflite flatbuffer: its operators (name, version, count), the converter's `min_runtime_version`
metadata, and whether every op runs on a target tflite-runtime (default 2.11.0).

The per-op table lists the TFLite runtime that introduced each op version (TFLite's
tools/versioning/runtime_version.cc), for the versions introduced from 2.3 on: older ones run everywhere
we target. TRANSPOSE v6 (6-D) needs 2.12.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ModelFileError, UserError

DEFAULT_TARGET = "2.11.0"

# op -> {version: minimum runtime}; only versions introduced in 2.3.0 or later.
OP_RUNTIME = {
    "ABS": {2: "2.4.0", 3: "2.5.0", 4: "2.6.0", 5: "2.12.0"},
    "ADD": {3: "2.4.0", 4: "2.6.0", 5: "2.13.0"},
    "ATAN2": {1: "2.10.0"},
    "AVERAGE_POOL_2D": {3: "2.3.0"},
    "BATCH_MATMUL": {1: "2.3.0", 2: "2.3.0", 3: "2.4.0", 4: "2.5.0"},
    "BROADCAST_ARGS": {1: "2.6.0"},
    "BROADCAST_TO": {2: "2.5.0", 3: "2.5.0"},
    "CAST": {2: "2.7.0", 3: "2.8.0", 4: "2.9.0", 5: "2.13.0", 6: "2.14.0"},
    "CONCATENATION": {3: "2.3.0", 4: "2.14.0"},
    "CONV_2D": {4: "2.3.0", 5: "2.4.0", 6: "2.9.0", 7: "2.13.0", 8: "2.14.0"},
    "DEPTH_TO_SPACE": {2: "2.5.0"},
    "DEPTHWISE_CONV_2D": {5: "2.3.0", 6: "2.3.0", 7: "2.11.0"},
    "DEQUANTIZE": {4: "2.2.0", 5: "2.7.0", 6: "2.14.0"},
    "DIV": {2: "2.3.0"},
    "DYNAMIC_UPDATE_SLICE": {1: "2.9.0"},
    "EQUAL": {3: "2.3.0"},
    "EXP": {2: "2.12.0"},
    "FILL": {2: "2.3.0", 3: "2.5.0"},
    "FULLY_CONNECTED": {7: "2.3.0", 8: "2.3.0", 9: "2.3.0", 10: "2.11.0", 11: "2.15.0", 12: "2.17.0"},
    "GATHER": {4: "2.4.0", 5: "2.5.0", 6: "2.13.0", 7: "2.15.0"},
    "GATHER_ND": {2: "2.3.0", 3: "2.5.0", 4: "2.13.0"},
    "GELU": {1: "2.9.0", 2: "2.9.0"},
    "LEAKY_RELU": {2: "2.3.0"},
    "LOGISTIC": {3: "2.3.0"},
    "MAX_POOL_2D": {3: "2.3.0"},
    "MAXIMUM": {3: "2.3.0", 4: "2.3.0"},
    "MEAN": {3: "2.4.0"},
    "MINIMUM": {3: "2.3.0", 4: "2.3.0"},
    "MUL": {4: "2.3.0", 5: "2.6.0", 6: "2.11.0", 7: "2.13.0"},
    "PACK": {3: "2.3.0", 4: "2.13.0"},
    "PAD": {3: "2.4.0", 4: "2.6.0"},
    "PADV2": {3: "2.4.0", 4: "2.6.0"},
    "QUANTIZE": {3: "2.7.0"},
    "READ_VARIABLE": {1: "2.6.0"},
    "REDUCE_MAX": {3: "2.5.0"},
    "REDUCE_MIN": {3: "2.5.0"},
    "RELU": {3: "2.5.0"},
    "RELU6": {3: "2.5.0"},
    "RELU_0_TO_1": {1: "2.10.0"},
    "RESHAPE": {},
    "RESIZE_BILINEAR": {4: "2.5.0"},
    "RESIZE_NEAREST_NEIGHBOR": {3: "2.3.0", 4: "2.4.0"},
    "REVERSE_V2": {3: "2.5.0"},
    "RSQRT": {2: "2.5.0", 3: "2.15.0"},
    "SELECT_V2": {2: "2.12.0"},
    "SLICE": {4: "2.4.0", 5: "2.5.0", 6: "2.14.0"},
    "SOFTMAX": {3: "2.3.0"},
    "SPLIT": {4: "2.3.0"},
    "SPLIT_V": {2: "2.3.0"},
    "SQUARED_DIFFERENCE": {2: "2.5.0"},
    "SQUEEZE": {2: "2.5.0"},
    "STRIDED_SLICE": {5: "2.5.0", 6: "2.6.0", 7: "2.14.0", 8: "2.14.0"},
    "SUB": {3: "2.3.0", 4: "2.4.0", 5: "2.4.0"},
    "SUM": {},
    "TANH": {3: "2.3.0"},
    "TILE": {3: "2.8.0"},
    "TRANSPOSE": {4: "2.3.0", 5: "2.4.0", 6: "2.12.0"},
    "TRANSPOSE_CONV": {3: "2.3.0", 4: "2.13.0"},
    "UNPACK": {4: "2.3.0"},
    "UNSORTED_SEGMENT_MIN": {1: "2.11.0"},
    "VAR_HANDLE": {1: "2.6.0"},
}


class RuntimeCompatibilityError(UserError, RuntimeError):
    """An export needs a newer tflite-runtime than the target."""


def parse_version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".") if p.isdigit())


@dataclass
class OpInfo:
    name: str
    version: int
    count: int
    custom: bool = False

    def min_runtime(self) -> str | None:
        return OP_RUNTIME.get(self.name, {}).get(self.version)


@dataclass
class AuditReport:
    ops: list[OpInfo]
    min_runtime_version: str | None
    target: str
    offending: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.offending

    def to_dict(self) -> dict:
        return {"min_runtime_version": self.min_runtime_version, "target_runtime": self.target,
                "ops": [{"name": o.name, "version": o.version, "count": o.count, "custom": o.custom,
                         "min_runtime": o.min_runtime()} for o in self.ops],
                "offending": self.offending}


def _schema():
    from tensorflow.lite.python import schema_py_generated as schema

    return schema


def read_model(buffer: bytes) -> tuple[list[OpInfo], str | None]:
    """(ops with version and use count, min_runtime_version metadata) from a .tflite flatbuffer."""
    schema = _schema()
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    try:
        model = schema.Model.GetRootAsModel(bytearray(buffer), 0)
        codes = []
        for i in range(model.OperatorCodesLength()):
            oc = model.OperatorCodes(i)
            code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
            custom = oc.CustomCode()
            name = custom.decode() if custom else names.get(code, f"OP_{code}")
            codes.append((name, oc.Version(), bool(custom) or name == "CUSTOM"))
        counts = [0] * len(codes)
        for s in range(model.SubgraphsLength()):
            graph = model.Subgraphs(s)
            for j in range(graph.OperatorsLength()):
                counts[graph.Operators(j).OpcodeIndex()] += 1
        runtime = None
        for i in range(model.MetadataLength()):
            meta = model.Metadata(i)
            if meta.Name() == b"min_runtime_version":
                raw = model.Buffers(meta.Buffer()).DataAsNumpy()
                raw = raw.tobytes() if isinstance(raw, np.ndarray) else b""
                runtime = raw.split(b"\0", 1)[0].decode("ascii", "replace") or None
    except Exception as err:  # a truncated or foreign file fails deep inside flatbuffers
        raise ModelFileError(f"not a readable TFLite flatbuffer ({type(err).__name__})") from None
    ops = [OpInfo(n, v, c, custom) for (n, v, custom), c in zip(codes, counts)]
    return sorted(ops, key=lambda o: o.name), runtime


def audit(buffer: bytes, target: str = DEFAULT_TARGET, source: str = "model") -> AuditReport:
    """Raises RuntimeCompatibilityError naming every op (and version) the target runtime cannot run."""
    ops, runtime = read_model(buffer)
    report = AuditReport(ops, runtime, target)
    want = parse_version(target)
    for op in ops:
        if op.custom or op.name in ("CUSTOM", "FLEX") or op.name.startswith("Flex"):
            report.offending.append(f"{op.name} (custom/Flex op, not a TFLite builtin)")
            continue
        need = op.min_runtime()
        if need and parse_version(need) > want:
            report.offending.append(f"{op.name} v{op.version} (needs runtime {need})")
    if runtime and parse_version(runtime) > want and not report.offending:
        report.offending.append(f"model metadata says min_runtime_version {runtime} (op not in this audit's table)")
    if report.offending:
        raise RuntimeCompatibilityError(
            f"{source} needs a newer TFLite runtime than {target}: " + "; ".join(report.offending))
    return report
