"""convert.py's work: convert each mode, audit it, measure it, and write report.json / report.md."""
from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError, MissingFileError
from ..outputs import atomic_bytes, atomic_json

QUANTIZATION = {"fp32": "none (float32)", "fp16": "float16 weights", "dynamic_int8": "int8 weights, float activations",
                "int8": "int8 weights and activations; decode tail (heatmap softmax, AAM product, soft-argmax) in float"}


@dataclass
class ExportConfig:
    """What `run_export` converts, checks and measures; `convert.py` fills it from its flags."""

    model: str = os.path.join("runs", "student", "best.keras")
    modes: tuple[str, ...] = ("fp32", "fp16", "dynamic_int8", "int8")
    output: str = os.path.join("runs", "export")
    target_runtime: str = "2.11.0"  # refuse an export that needs a newer tflite-runtime
    int8_io: bool = False  # full-int8 model takes and returns int8
    heatmaps: bool = False  # also output the fused heatmaps
    threads: tuple[int, ...] = (1, 2)  # thread counts to measure latency at
    runs: int = 50  # timed invocations per latency (after 10 warm-up)
    data: str | None = None  # evaluation set; None: the synthetic test faces
    data_format: str = "auto"
    images_root: str | None = None
    calibration_data: str | None = None  # int8 representative faces; None: the synthetic training faces
    calibration_samples: int = 100
    int8_float_blocks: str = "auto"  # auto, none, or comma-separated layer names (see int8_sensitivity)
    int8_budget: float = 0.02
    int8_max_float_blocks: int = 3
    max_eval: int | None = None
    compare: list[str] = field(default_factory=list)  # other .tflite files measured side by side


def _crops(pipeline, samples, batch_size=32):
    images, affines, indices = [], [], []
    for x, t in pipeline.dataset(samples, batch_size, training=False):
        images.append(x.numpy())
        affines.append(t["affine"].numpy())
        indices.append(t["index"].numpy())
    return np.concatenate(images), np.concatenate(affines), np.concatenate(indices)


def _representative(crops):
    """The converter's calibration callable: one batch-1 crop at a time."""
    def generate():
        for crop in crops:
            yield [crop[None].astype(np.float32)]
    return generate


def _nme(pred_crop, affines, index, samples, scheme):
    from ..decode import crop_to_image
    from ..evaluate import evaluate_predictions

    metrics, _ = evaluate_predictions(crop_to_image(pred_crop, affines), index, samples, scheme)
    return metrics


def _choose_float_blocks(model, args, crops, score):
    """--int8-float-blocks: `auto` (simulated sensitivity, see int8_sensitivity), `none`, or layer names."""
    from .int8_sensitivity import analyse, quantizable_blocks
    from .tflite_export import FLOAT_TAIL

    choice = args.int8_float_blocks.strip()
    if choice == "none":
        return [], None
    if choice != "auto":
        names = [n.strip() for n in choice.split(",") if n.strip()]
        known = quantizable_blocks(model, FLOAT_TAIL)
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ConfigError(f"--int8-float-blocks: no block named {', '.join(unknown)} in {args.model} "
                             f"(blocks: {', '.join(known)})")
        return names, None
    start = time.perf_counter()
    result = analyse(model, crops, score, budget=args.int8_budget, max_float=args.int8_max_float_blocks, skip=FLOAT_TAIL)
    top = ", ".join(f"{n} {result.deviation_px[n]:.2f}" for n in result.ranked[:3])
    change = lambda nme: f"{(nme - result.nme_float) / result.nme_float:+.1%}"  # noqa: E731
    print(f"  int8 sensitivity ({len(crops)} calibration faces, {time.perf_counter() - start:.0f} s): most sensitive "
          f"blocks (px) {top}; simulated NME {change(result.nme_int8)} all int8, {change(result.nme_chosen)} with "
          f"{', '.join(result.keep_float) or 'no block'} in float")
    return result.keep_float, result


def run_export(args: ExportConfig, silenced=contextlib.nullcontext) -> dict:
    """Convert `args.model` in each mode, audit, score and time every export, write report.json / report.md and
    return the report. `silenced` is a context manager factory that hides the converter's log output."""
    modes, threads = list(args.modes), list(args.threads)
    from ..data import load_dataset
    from ..data.pipeline import LandmarkPipeline, PipelineConfig
    from ..data.synthetic import ensure_default_dataset
    from ..models import load_model, model_image_size, model_scheme
    from ..outputs import prepare_output_dir
    from .benchmark import PROCESS_NOTE, measure_latency
    from .flops import count_flops
    from .op_audit import audit, read_model
    from .tflite_export import convert
    from .tflite_runner import scheme_file
    from ..predictor import KerasPredictor, TFLitePredictor

    model = load_model(args.model)
    scheme, size = model_scheme(model), model_image_size(model)
    prepare_output_dir(args.output)
    train_path, test_path = (None, None)
    if args.data is None or ("int8" in modes and args.calibration_data is None):
        if scheme.num_points not in (68, 51):  # the synthetic faces are 68-point (51 is their inner part)
            need = [flag for flag, given in (("--data", args.data), ("--calibration-data", "int8" not in modes
                                             or args.calibration_data)) if not given]
            raise ConfigError(f"{args.model}: a {scheme.num_points}-point model; the default (synthetic) faces have 68 "
                              f"points: pass {' and '.join(need)} with faces in its layout")
        train_path, test_path = ensure_default_dataset(reuse_any=True)
    eval_path = args.data or test_path
    samples, _ = load_dataset(eval_path, args.data_format, scheme.num_points, args.images_root)
    if args.max_eval:
        samples = samples[: args.max_eval]
    pipeline = LandmarkPipeline(scheme, PipelineConfig(image_size=size))
    images, affines, index = _crops(pipeline, samples)
    keras_pred = KerasPredictor(model)(images)
    keras_metrics = _nme(keras_pred, affines, index, samples, scheme)
    params = int(model.count_params())
    print(f"{args.model}: {params / 1e6:.2f}M parameters, {size}px input, {scheme.num_points} points; "
          f"Keras NME {keras_metrics['nme']:.4f} on {len(samples)} faces ({eval_path})")

    representative, float_blocks, sensitivity = None, [], None  # only full int8 needs calibration crops
    if "int8" in modes:
        if args.calibration_data is None:
            print(f"int8 calibration on the synthetic faces ({train_path}): for a model of real photos, pass "
                  "--calibration-data with a few hundred of its own faces")
        calib_samples, _ = load_dataset(args.calibration_data or train_path, args.data_format, scheme.num_points,
                                        args.images_root)
        # Evenly spaced, not the first N: sorted folders put one person's (or one style's) faces together.
        pick = np.unique(np.linspace(0, len(calib_samples) - 1, min(args.calibration_samples, len(calib_samples))).astype(int))
        calib_samples = [calib_samples[i] for i in pick]
        calib_crops, calib_affines, calib_index = _crops(pipeline, calib_samples)
        representative = _representative(calib_crops)
        float_blocks, sensitivity = _choose_float_blocks(
            model, args, calib_crops, lambda pred: _nme(pred, calib_affines, calib_index, calib_samples, scheme)["nme"])

    stem = os.path.splitext(os.path.basename(args.model))[0]
    prefix = f"{os.path.basename(os.path.dirname(os.path.abspath(args.model)))}_{stem}"
    report = {"model": args.model, "params": params, "image_size": size, "num_points": scheme.num_points,
              "scheme": scheme.name, "target_runtime": args.target_runtime, "eval_data": eval_path,
              "num_images": len(samples), "nme_keras": keras_metrics["nme"], "normalization": keras_metrics["normalization"],
              "latency_process": PROCESS_NOTE, "exports": {}, "compare": {}}
    for mode in modes:
        start = time.perf_counter()
        with silenced():
            buffer = convert(model, mode, representative, args.int8_io if mode == "int8" else False, args.heatmaps,
                             float_blocks if mode == "int8" else ())
        seconds = time.perf_counter() - start
        result = audit(buffer, args.target_runtime, source=f"{mode} export of {args.model}")
        path = os.path.join(args.output, f"{prefix}_{mode}.tflite")
        atomic_bytes(path, buffer)
        atomic_json(scheme_file(path), scheme.get_config())  # the layout, which the .tflite cannot hold
        pred = TFLitePredictor(path, threads=threads[0], scheme=scheme)(images)
        tfl_metrics = _nme(pred, affines, index, samples, scheme)
        entry = {
            "file": path, "scheme_file": scheme_file(path), "size_bytes": len(buffer), "params": params,
            "flops": count_flops(buffer),
            "min_runtime_version": result.min_runtime_version,
            "ops": result.to_dict()["ops"],
            "quantization": QUANTIZATION[mode] + (f"; float blocks: {', '.join(float_blocks)}"
                                                  if mode == "int8" and float_blocks else ""),
            "int8_io": bool(args.int8_io and mode == "int8"),
            "convert_seconds": round(seconds, 1),
            "nme_keras": keras_metrics["nme"], "nme_tflite": tfl_metrics["nme"],
            "nme_relative_change": (tfl_metrics["nme"] - keras_metrics["nme"]) / keras_metrics["nme"],
            "max_deviation_px": float(np.abs(pred - keras_pred).max()),
            "latency_ms": {str(t): measure_latency(path, t, runs=args.runs) for t in threads},
        }
        if mode == "int8":
            entry["float_blocks"] = list(float_blocks)
            if sensitivity is not None:
                entry["int8_sensitivity"] = {
                    "deviation_px": sensitivity.deviation_px, "simulated_nme_float": sensitivity.nme_float,
                    "simulated_nme_all_int8": sensitivity.nme_int8, "simulated_nme_chosen": sensitivity.nme_chosen,
                    "budget": args.int8_budget, "calibration_images": len(calib_crops)}
            entry["calibration_data"] = args.calibration_data or train_path
        report["exports"][mode] = entry
        lat = ", ".join(f"{t} thr {entry['latency_ms'][str(t)]['median']:.2f} ms" for t in threads)
        print(f"  {mode:>12}: {len(buffer) / 1e6:6.2f} MB, runtime >= {result.min_runtime_version}, NME "
              f"{entry['nme_tflite']:.4f} (max dev {entry['max_deviation_px']:.3f} px), {lat} -> {path}")
    for other in args.compare:
        if not os.path.isfile(other):
            raise MissingFileError(f"{other}: --compare model not found")
        with open(other, "rb") as handle:
            buffer = handle.read()
        ops, runtime = read_model(buffer)
        report["compare"][other] = {
            "size_bytes": len(buffer), "flops": count_flops(buffer), "min_runtime_version": runtime,
            "latency_ms": {str(t): measure_latency(other, t, runs=args.runs) for t in threads}}
        c = report["compare"][other]
        print(f"  compare {os.path.basename(other)}: {len(buffer) / 1e6:.2f} MB, "
              + ", ".join(f"{t} thr {c['latency_ms'][str(t)]['median']:.2f} ms" for t in threads))
    paths = {"json": os.path.join(args.output, "report.json"), "markdown": os.path.join(args.output, "report.md")}
    atomic_json(paths["json"], report)
    atomic_bytes(paths["markdown"], markdown(report, threads).encode())
    report["paths"] = paths
    return report


def markdown(report: dict, threads) -> str:
    """report.md: one table row per export and per compared model, and how latency was measured."""
    lines = [f"# TFLite export of `{report['model']}`", "",
             f"{report['params'] / 1e6:.2f}M parameters, {report['image_size']}px input, {report['num_points']} points. "
             f"Accuracy on {report['num_images']} faces of `{report['eval_data']}` ({report['normalization']} NME); "
             f"Keras model NME {report['nme_keras']:.4f}. Target runtime {report['target_runtime']}.", ""]
    head = "| model | quantization | size (MB) | GFLOPs | min runtime | NME | max dev (px) | " + \
        " | ".join(f"{t} thread(s) median / p90 (ms)" for t in threads) + " |"
    lines += [head, "|" + "---|" * (7 + len(threads))]
    for mode, e in report["exports"].items():
        lat = " | ".join(f"{e['latency_ms'][str(t)]['median']:.2f} / {e['latency_ms'][str(t)]['p90']:.2f}" for t in threads)
        lines.append(f"| {mode} | {e['quantization']} | {e['size_bytes'] / 1e6:.2f} | {e['flops'] / 1e9:.3f} | "
                     f"{e['min_runtime_version']} | {e['nme_tflite']:.4f} | {e['max_deviation_px']:.3f} | {lat} |")
    for name, c in report["compare"].items():
        lat = " | ".join(f"{c['latency_ms'][str(t)]['median']:.2f} / {c['latency_ms'][str(t)]['p90']:.2f}" for t in threads)
        lines.append(f"| {os.path.basename(name)} (compare) | - | {c['size_bytes'] / 1e6:.2f} | {c['flops'] / 1e9:.3f} | "
                     f"{c['min_runtime_version']} | - | - | {lat} |")
    lines += ["", "Latency: tflite_runtime with XNNPACK, batch 1, after 10 warm-up runs, measured on this machine in "
              "this run, each in a separate process that imports only numpy and tflite_runtime (as on a device: in a "
              "process that has imported TensorFlow the interpreter binds TensorFlow's newer XNNPACK, which also "
              "runs int8 kernels that tflite_runtime's does not, and reads several times faster for int8). GFLOPs counted from the flatbuffer (2 x MACs of conv/FC/matmul, 1 per output element "
              "otherwise).", ""]
    return "\n".join(lines)
