"""Where a landmark model's FLOPs go: the fp32 .tflite's operators (counted by landmark_kd.export.flops) grouped
by the block their output tensor belongs to (backbone stages, head parts).

    python benchmarks/flops_by_block.py                                   # untrained student architecture
    python benchmarks/flops_by_block.py --preset mobilevitv2_050_fast --head-dim 32
    python benchmarks/flops_by_block.py --model landmark_kd/pretrained/real_student.keras
"""
from __future__ import annotations

import collections
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from landmark_kd.cli import ArgumentParser, model_path, positive_int, run  # noqa: E402
from landmark_kd.quiet import quiet_tensorflow, silenced  # noqa: E402

quiet_tensorflow()
BLOCK = re.compile(r"(conv_stem|layer\d|patch_embed|stage\d|head_lateral|head_up|head_add|head_refine|head_heatmaps|"
                   r"point_maps|edge_maps|edge_to_heatmap|heatmaps|landmarks)")


def flops_by_block(buffer: bytes) -> dict[str, int]:
    from landmark_kd.export.flops import op_flops

    blocks: collections.Counter = collections.Counter()
    for tensor, flops in op_flops(buffer):
        match = BLOCK.search(tensor)
        blocks[match.group(1) if match else "other"] += flops
    return dict(blocks)


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, type=model_path,
                        help=".keras landmark model (default: an untrained --preset)")
    parser.add_argument("--preset", default="mobilevitv2_050", help="backbone of the untrained model (without --model)")
    parser.add_argument("--image-size", type=positive_int, default=128, help="its input size in pixels")
    parser.add_argument("--head-dim", type=positive_int, default=64, help="its head channels")
    args = parser.parse_args(argv)
    from landmark_kd.export.tflite_export import convert
    from landmark_kd.models import HeadConfig, build_landmark_model, load_model

    model = load_model(args.model) if args.model else build_landmark_model(
        args.preset, "68", args.image_size, HeadConfig(args.head_dim, 2, args.preset.startswith("mobilevit")))
    with silenced():
        buffer = convert(model, "fp32")
    blocks = flops_by_block(buffer)
    total = sum(blocks.values())
    print(f"{args.model or args.preset}: {total / 1e9:.3f} GFLOPs, {model.count_params() / 1e6:.2f}M parameters")
    print("| block | MFLOPs | share |\n|---|---|---|")
    for name, flops in sorted(blocks.items(), key=lambda item: -item[1]):
        print(f"| {name} | {flops / 1e6:.1f} | {100 * flops / total:.1f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
