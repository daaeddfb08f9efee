"""FLOPs of a .tflite model, counted from its flatbuffer: 2 x multiply-accumulates of CONV_2D,
DEPTHWISE_CONV_2D, FULLY_CONNECTED, BATCH_MATMUL and TRANSPOSE_CONV, plus one per output element of every
other op. The same rule for every model, so GFLOP/s comparisons between models are fair."""
from __future__ import annotations

from typing import Iterator

import numpy as np


def count_flops(buffer: bytes) -> int:
    """FLOPs of one inference, counted from the flatbuffer (2 x MACs of conv / FC / matmul)."""
    return int(sum(flops for _, flops in op_flops(buffer)))


def op_flops(buffer: bytes) -> Iterator[tuple[str, int]]:
    """(output tensor name, FLOPs) of every operator, by the module's rule; the name carries the Keras layer
    path, so a caller can group the cost by block."""
    from tensorflow.lite.python import schema_py_generated as schema

    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    model = schema.Model.GetRootAsModel(bytearray(buffer), 0)
    graph = model.Subgraphs(0)

    def shape(index: int) -> np.ndarray:
        return graph.Tensors(index).ShapeAsNumpy() if index >= 0 else np.zeros(0, np.int64)

    for j in range(graph.OperatorsLength()):
        op = graph.Operators(j)
        oc = model.OperatorCodes(op.OpcodeIndex())
        name = names.get(max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode()), "")
        inputs, outputs = op.InputsAsNumpy(), op.OutputsAsNumpy()
        out = shape(int(outputs[0])) if len(outputs) else np.zeros(0)
        out_elems = int(np.prod(out)) if out.size else 0
        tensor = graph.Tensors(int(outputs[0])).Name().decode() if len(outputs) else ""
        if name == "CONV_2D":
            w = shape(int(inputs[1]))  # (O, kh, kw, I)
            flops = 2 * out_elems * int(w[1] * w[2] * w[3])
        elif name == "DEPTHWISE_CONV_2D":
            w = shape(int(inputs[1]))  # (1, kh, kw, C)
            flops = 2 * out_elems * int(w[1] * w[2])
        elif name == "FULLY_CONNECTED":
            w = shape(int(inputs[1]))  # (O, I)
            flops = 2 * out_elems * int(w[1])
        elif name == "BATCH_MATMUL":
            a = shape(int(inputs[0]))
            opts = schema.BatchMatMulOptions()
            table = op.BuiltinOptions()
            adj_x = False
            if table is not None:
                opts.Init(table.Bytes, table.Pos)
                adj_x = bool(opts.AdjX())
            k = int(a[-2] if adj_x else a[-1])
            flops = 2 * out_elems * k
        elif name == "TRANSPOSE_CONV":
            w = shape(int(inputs[1]))
            x = shape(int(inputs[2]))
            flops = 2 * int(np.prod(x)) * int(w[0] * w[1] * w[2])
        else:
            flops = out_elems
        yield tensor, int(flops)
