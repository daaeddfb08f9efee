"""Export a landmark model to TFLite for tflite-runtime 2.11 (fp32, fp16, dynamic-range int8, full int8), audit
its ops, and benchmark size, params, FLOPs, latency and accuracy against the Keras model.

    python convert.py                                   # runs/student/best.keras -> runs/export
    python convert.py --model runs/teacher/best.keras --modes fp32 --output runs/export_teacher
    python convert.py --compare face_landmark.tflite    # another model's latency and size, same run
"""
from __future__ import annotations

import os
import sys

from landmark_kd.quiet import quiet_unless_verbose

quiet_unless_verbose(sys.argv)
from landmark_kd.cli import (ArgumentParser, non_negative_float, non_negative_int, positive_int,  # noqa: E402
                             positive_int_list, run, runtime_version)
from landmark_kd.errors import ConfigError, MissingFileError  # noqa: E402
from landmark_kd.predictor import check_keras_file  # noqa: E402
from landmark_kd.quiet import silenced  # noqa: E402

DEFAULT_MODEL = os.path.join("runs", "student", "best.keras")


def parse_args(argv):
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, help="Keras landmark model (.keras), the run folder "
                        "holding it as best.keras, or a shipped model by its file name (real_student.keras)")
    parser.add_argument("--modes", default="fp32,fp16,dynamic_int8,int8",
                        help="comma-separated subset of fp32, fp16, dynamic_int8, int8 (full integer)")
    parser.add_argument("--int8-io", action="store_true", help="full-int8 model takes an int8 image (uint8 pixel - "
                        "128); its outputs stay float (default: float input)")
    parser.add_argument("--heatmaps", action="store_true", help="also output the fused heatmaps")
    parser.add_argument("--target-runtime", default="2.11.0", type=runtime_version, help="fail if any op needs a newer tflite-runtime")
    parser.add_argument("--threads", default="1,2", type=positive_int_list, help="thread counts to benchmark")
    parser.add_argument("--runs", type=positive_int, default=50, help="timed invocations per measurement (after 10 warm-up)")
    parser.add_argument("--data", default=None, help="evaluation set (default: synthetic test faces)")
    parser.add_argument("--data-format", default="auto", help="300w, wflw, cofw, custom or auto")
    parser.add_argument("--images-root", default=None, help="image folder for WFLW lists")
    parser.add_argument("--calibration-data", default=None, help="representative faces for int8: a folder of photos "
                        "(labelled or not), a WFLW .txt, a COFW .mat or a custom .json/.csv (default: synthetic "
                        "training faces)")
    parser.add_argument("--calibration-samples", type=positive_int, default=100,
                        help="int8: calibrate on at most this many faces of --calibration-data, evenly spaced over it")
    parser.add_argument("--int8-float-blocks", default="auto",
                        help="blocks the full-int8 model keeps in float: auto (the fewest most int8-sensitive, "
                        "found by simulating int8 rounding on the calibration faces; ~30 s for the student), none, or "
                        "comma-separated layer names")
    parser.add_argument("--int8-budget", type=non_negative_float, default=0.02,
                        help="auto: keep blocks float until the simulated relative NME increase is at most this")
    parser.add_argument("--int8-max-float-blocks", type=non_negative_int, default=3, help="auto: keep at most this many in float")
    parser.add_argument("--max-eval", type=positive_int, default=None, help="evaluate on at most this many faces")
    parser.add_argument("--compare", action="append", default=[], help="another .tflite to benchmark side by side")
    parser.add_argument("--output", default=os.path.join("runs", "export"), help="output folder; a rerun of the same "
                        "model replaces its earlier export there, another model's export is refused (default: "
                        "runs/export)")
    parser.add_argument("--overwrite", action="store_true", help="replace what --output holds even when it is another "
                        "model's export, or files no export of this model lists")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's and the converter's log output")
    return parser.parse_args(argv)


INT8_ONLY = ("int8_io", "calibration_data", "calibration_samples", "int8_float_blocks", "int8_budget",
             "int8_max_float_blocks")  # flags that only the full-int8 mode reads


def _main(argv: list[str] | None) -> int:
    args = parse_args(argv)
    from landmark_kd.predictor import resolve_model_path

    args.model = resolve_model_path(args.model)  # a run folder (its best.keras) or a shipped model's file name
    missing = [path for path in [args.model] + args.compare + ([args.data] if args.data else []) +
               ([args.calibration_data] if args.calibration_data else []) if not os.path.exists(path)]
    if missing:  # before the export, not after it
        raise MissingFileError(f"no model at {args.model}. Train and distil one first: `python train.py` then "
                               "`python distill.py`." if missing[0] == DEFAULT_MODEL else
                               f"{missing[0]}: no such file or directory")
    check_keras_file(args.model)  # a folder, a .tflite or no zip: one line before TensorFlow loads
    from landmark_kd.export import MODES
    from landmark_kd.export.report import ExportConfig, run_export

    modes = tuple(dict.fromkeys(m.strip() for m in args.modes.split(",") if m.strip()))  # each mode once
    bad = [m for m in modes if m not in MODES]
    if bad:
        raise ConfigError(f"unknown mode(s) {bad}; choose from {', '.join(MODES)}")
    if not any(name.strip() for name in args.int8_float_blocks.split(",")):  # else read as no block, unsaid
        raise ConfigError(f"--int8-float-blocks {args.int8_float_blocks!r} names no block; pass auto, none or "
                          "comma-separated layer names")
    if "int8" not in modes:  # flags only full int8 reads: given for fp16 alone, they would be dropped unsaid
        defaults = vars(parse_args([]))
        unused = [f"--{name.replace('_', '-')}" for name in INT8_ONLY if getattr(args, name) != defaults[name]]
        if unused:
            print(f"note: {', '.join(unused)} only affect{'s' if len(unused) == 1 else ''} full int8, which --modes "
                  f"{args.modes} does not include: not used")
    fields = {k: v for k, v in vars(args).items() if k in ExportConfig.__dataclass_fields__}
    config = ExportConfig(**{**fields, "modes": modes, "threads": tuple(args.threads)})
    report = run_export(config, silenced=lambda: silenced(not args.verbose))
    print(f"\nreport: {report['paths']['json']} and {report['paths']['markdown']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
