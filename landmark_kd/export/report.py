"""convert.py's work: convert each mode, audit it, measure it, and write report.json / report.md."""
from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, ContextManager, Sequence

import numpy as np

from ..errors import ConfigError, MissingFileError, ModelFileError
from ..outputs import atomic_bytes, atomic_json, output_lock

if TYPE_CHECKING:
    from ..data.records import LoadReport

QUANTIZATION = {"fp32": "none (float32)", "fp16": "float16 weights", "dynamic_int8": "int8 weights, float activations",
                "int8": "int8 weights and activations; decode tail (heatmap softmax, AAM product, soft-argmax, peak share) in float"}


@dataclass
class ExportConfig:
    """What `run_export` converts, checks and measures; `convert.py` fills it from its flags."""

    model: str = os.path.join("runs", "student", "best.keras")
    modes: tuple[str, ...] = ("fp32", "fp16", "dynamic_int8", "int8")
    output: str = os.path.join("runs", "export")
    target_runtime: str = "2.11.0"  # refuse an export that needs a newer tflite-runtime
    int8_io: bool = False  # full-int8 model takes an int8 image (its outputs stay float)
    heatmaps: bool = False  # also output the fused heatmaps
    threads: tuple[int, ...] = (1, 2)  # thread counts to measure latency at
    runs: int = 50  # timed invocations per latency (after 10 warm-up)
    data: str | None = None  # evaluation set; None: the synthetic test faces
    data_format: str = "auto"
    images_root: str | None = None
    calibration_data: str | None = None  # int8 representative faces; None: the synthetic training faces
    calibration_samples: int = 100  # int8: at most this many calibration faces, evenly spaced over the set
    int8_float_blocks: str = "auto"  # auto, none, or comma-separated layer names (see int8_sensitivity)
    int8_budget: float = 0.02
    int8_max_float_blocks: int = 3
    max_eval: int | None = None
    compare: list[str] = field(default_factory=list)  # other .tflite files measured side by side
    overwrite: bool = False  # replace an export of another model (or files no export of ours lists) in `output`


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


def check_modes_runtime(modes: Sequence[str], target_runtime: str) -> None:
    """ConfigError before any work when a mode always needs a newer runtime than the target: dynamic_int8 keeps
    its weights in int8 behind DEQUANTIZE v5 whatever the model (tflite_export._weight_only_int8)."""
    from .op_audit import OP_RUNTIME, parse_version

    need = OP_RUNTIME["DEQUANTIZE"][5]
    if "dynamic_int8" in modes and parse_version(target_runtime) < parse_version(need):
        raise ConfigError(f"mode dynamic_int8 needs tflite-runtime {need} or newer (its int8 weights are expanded by "
                          f"DEQUANTIZE v5); the target runtime is {target_runtime}: drop dynamic_int8 or raise "
                          "--target-runtime")


def export_prefix(model: str) -> str:
    """The exports' file-name prefix, `<model's folder>_<model file name>` (runs/student/best.keras ->
    student_best), so two models' exports differ by name."""
    stem = os.path.splitext(os.path.basename(model))[0]
    return f"{os.path.basename(os.path.dirname(os.path.abspath(model)))}_{stem}"


def export_targets(output: str, model: str, modes: Sequence[str]) -> list[str]:
    """Every file a run writes into `output`: each mode's .tflite and .scheme.json, report.json and report.md."""
    from .tflite_runner import scheme_file

    files = [os.path.join(output, f"{export_prefix(model)}_{mode}.tflite") for mode in modes]
    return files + [scheme_file(f) for f in files] + [os.path.join(output, n) for n in ("report.json", "report.md")]


def _read_earlier_report(output: str):
    """(report.json in `output` as a dict, or None when there is none); ConfigError when it cannot be read."""
    import json

    path = os.path.join(output, "report.json")
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as handle:
            report = json.load(handle)
    except (OSError, ValueError) as err:
        raise ConfigError(f"{path}: cannot be read ({getattr(err, 'strerror', None) or err}), so whose export "
                          f"{output} holds is unknown; pass another --output, or --overwrite to replace it") from None
    if not isinstance(report, dict):
        raise ConfigError(f"{path}: not a convert.py report (no JSON object); pass another --output, or "
                          "--overwrite to replace it")
    return report


def listed_files(output: str, report: dict | None) -> list[str]:
    """The files an earlier report lists (each export's .tflite and .scheme.json), by name inside `output`: the
    paths it holds are relative to wherever that run was started."""
    exports = report.get("exports") if report else None
    entries = exports.values() if isinstance(exports, dict) else []
    names = [e.get(key) for e in entries if isinstance(e, dict) for key in ("file", "scheme_file")]
    return [os.path.join(output, os.path.basename(n)) for n in names if isinstance(n, str) and n]


def same_model(report: dict, model: str) -> bool:
    """Whether an earlier report in the output folder is an export of `model`: its `model_path` (absolute, written
    since reports record it) is the same file; an older report's `model` (as typed, from wherever it ran) gives
    the same file-name prefix."""
    recorded = report.get("model_path")
    if isinstance(recorded, str) and os.path.exists(recorded):  # a moved checkout: compared by prefix below
        return os.path.realpath(recorded) == os.path.realpath(model)
    return isinstance(report.get("model"), str) and export_prefix(report["model"]) == export_prefix(model)


def check_output_folder(output: str, model: str, modes: Sequence[str], overwrite: bool = False) -> None:
    """Before any work: ConfigError when `output` holds an export of another model (the default runs/export is
    every model's), or a file this run would write that no earlier export of this model there lists (someone
    else's), unless `overwrite`. A rerun of the same model replaces its own earlier export."""
    if overwrite or not os.path.isdir(output):
        return
    report = _read_earlier_report(output)
    own = os.path.join(os.path.dirname(output.rstrip(os.sep)), f"export_{export_prefix(model)}")
    hint = f"pass another --output (e.g. {own}), or --overwrite to replace it"
    if report is not None and not same_model(report, model):
        other = report.get("model_path") or report.get("model")
        whose = f"of another model ({other})" if isinstance(other, str) else "that names no source model"
        raise ConfigError(f"{output} holds an export {whose}; {hint}")
    ours = {os.path.realpath(p) for p in listed_files(output, report)}
    if report is not None:
        ours |= {os.path.realpath(os.path.join(output, n)) for n in ("report.json", "report.md")}
    foreign = [p for p in export_targets(output, model, modes) if os.path.lexists(p) and os.path.realpath(p) not in ours]
    if foreign:
        raise ConfigError(f"{foreign[0]}: already there, and no earlier export of {model} in {output} lists it; {hint}")


def check_compare_models(paths: Sequence[str]) -> None:
    """Each --compare model, before any export: a .tflite file the runtime loads (checked in a child process),
    so a bad one fails at once, named, instead of after the export with half a report written."""
    from .tflite_runner import verify_tflite

    for path in paths:
        if not os.path.exists(path):
            raise MissingFileError(f"--compare {path}: no such file")
        if not os.path.isfile(path):
            raise MissingFileError(f"--compare {path}: a folder, not a .tflite file")
        suffix = os.path.splitext(path)[1].lower()
        if suffix == ".keras":
            raise ModelFileError(f"--compare {path}: a Keras model; --compare times .tflite files: export it first "
                                 f"(`python convert.py --model {path} --output OTHER_FOLDER`) and compare its .tflite")
        if suffix != ".tflite":
            raise ModelFileError(f"--compare {path}: not a .tflite file ({suffix or 'no extension'}); --compare times "
                                 ".tflite models")
        try:
            verify_tflite(path)
        except ModelFileError as err:
            raise ModelFileError(f"--compare {err}") from None


def check_not_single_image(path: str | None, flag: str) -> None:
    """A single photo given where a dataset is wanted: one line naming the flag and what it takes (the format
    detector's own advice, --data-format, cannot help: no format reads one image)."""
    from ..data.records import IMAGE_EXTENSIONS

    if path is None or not os.path.isfile(path) or not path.lower().endswith(IMAGE_EXTENSIONS):
        return
    if flag == "--calibration-data":
        takes = ("a folder of face photos (with a .pts beside each, or unlabelled: each face is then boxed by the "
                 "face detector; put your photos in a folder and pass that), a WFLW .txt list, a COFW .mat or a "
                 "custom .json/.csv; 100-300 faces are usual")
    else:
        takes = ("a labelled dataset: a 300-W folder (images with a .pts beside each), a WFLW .txt list, a COFW .mat "
                 "or a custom .json/.csv")
    raise ConfigError(f"{flag} {path}: a single image; {flag} takes {takes}")


def _unlabelled_photo_count(path: str, data_format: str) -> int | None:
    """How many images a folder read as 300-W holds when none has a .pts beside it (e.g. LFW's <person>/*.jpg;
    0: nothing to calibrate on); None for anything else (a labelled folder, a list file, another format)."""
    if data_format not in ("auto", "300w") or not os.path.isdir(path):
        return None
    from ..data.pts300w import find_pairs
    from ..pseudolabel import list_images

    return None if find_pairs(path) else len(list_images(path))


FEW_CALIBRATION_FACES = 50  # below this, report.md and the console warn that int8's ranges rest on few faces


def few_calibration_faces(count: int, path: str) -> str:
    """The warning for int8 calibrated on fewer than FEW_CALIBRATION_FACES faces (console and report.json)."""
    return (f"warning: int8 calibration on only {count} face{'' if count == 1 else 's'} of {path}: the activation "
            "ranges they give may miss what other faces reach; 100-300 is usual (--calibration-samples, "
            "--calibration-data)")


def _load_calibration(path: str, args: ExportConfig, num_points: int) -> tuple[list, bool]:
    """(evenly spaced calibration samples, labelled). Calibration needs face crops, not landmarks, so a folder
    of unlabelled photos is used too: each photo's face boxed by the detector (data.unlabeled)."""
    from ..data import DatasetError, load_dataset

    try:
        samples, load_report = load_dataset(path, args.data_format, num_points, args.images_root)
        labelled = True
        if load_report.skipped:  # as for --data: a skipped record is said, never silent
            print(f"int8 calibration data {path}: {load_report.summary()}")
    except DatasetError:
        photos = _unlabelled_photo_count(path, args.data_format)
        if photos == 0:  # "no .pts files found" would say labels are needed: they are not
            from ..data.pts300w import list_file_hint

            raise DatasetError(f"{path}: neither images nor .pts files found{list_file_hint(path)}; "
                               "--calibration-data takes face photos, with or without a .pts beside each") from None
        if not photos:
            raise
        from ..data.unlabeled import load_unlabeled

        print(f"int8 calibration: {path} holds photos without landmark files; the calibration faces are these "
              "unlabelled photos, boxed by the face detector (BlazeFace)")
        samples, labelled = load_unlabeled(path, num_points, spread=args.calibration_samples), False
    # Evenly spaced, not the first N: sorted folders put one person's (or one style's) faces together.
    pick = np.unique(np.linspace(0, len(samples) - 1, min(args.calibration_samples, len(samples))).astype(int))
    if len(pick) < FEW_CALIBRATION_FACES:
        print(few_calibration_faces(len(pick), path))
    return [samples[i] for i in pick], labelled


def _unlabelled_score(reference: np.ndarray, nme_keras: float, normalization: str, scheme):
    """The int8 simulation's score on unlabelled calibration faces: the Keras model's landmarks (`reference`,
    crop pixels) stand in for the truth, and its NME on the evaluation faces is added in quadrature (int8
    rounding error taken as independent of the model's own), so a relative NME change can be estimated."""
    from ..metrics import normalising_distance

    norm = np.maximum(normalising_distance(reference, scheme, normalization), 1.0)

    def score(pred: np.ndarray) -> float:
        deviation = np.linalg.norm(np.asarray(pred, np.float64) - reference, axis=-1).mean(-1) / norm
        return float(np.sqrt(nme_keras ** 2 + deviation ** 2).mean())
    return score


def _remove_earlier_export(output: str, keep=()) -> int:
    """Delete what an earlier report.json in `output` lists (each export's .tflite and .scheme.json) and that
    report (.json, .md), so a rerun with fewer modes leaves no stale export beside the new report. Returns the
    count. Files it does not list stay, and so do this run's inputs (`keep`, e.g. a --compare model). Whose export
    it is was checked before the work (check_output_folder)."""
    report_path = os.path.join(output, "report.json")
    if not os.path.isfile(report_path):
        return 0
    try:
        listed = listed_files(output, _read_earlier_report(output))
    except ConfigError:
        listed = []  # unreadable (and --overwrite): it lists nothing we can trust; only the report is replaced
    keep = {os.path.realpath(p) for p in keep}
    removed = 0
    for target in listed + [report_path, os.path.join(output, "report.md")]:
        if os.path.isfile(target) and os.path.realpath(target) not in keep:
            os.remove(target)
            removed += 1
    return removed


# What the project measured for full int8 on the x86 tflite-runtime 2.14 wheel (its XNNPACK runs no int8 op): the
# shipped full-int8 student against its fp16 model, 1 thread, benchmarks/latency_side_by_side.py, sixth release
# (landmark_kd/pretrained/README.md, "Latency"). Cited when a run has no fp16/fp32 timing of its own to compare.
MEASURED_INT8_MS, MEASURED_FP16_MS = 31.0, 4.00


def int8_latency_note(report: dict) -> str | None:
    """The full-int8 export's speed against the float one, from this run's own timings where it measured a float
    mode (fp16, else fp32 or dynamic_int8: they run at one speed), else what the project measured: on a runtime
    without int8 kernels (tflite-runtime's x86 wheel) full int8 is several times slower, not faster."""
    exports = report["exports"]
    e = exports.get("int8")
    if not e:
        return None
    advice = ("tflite-runtime's x86 wheel runs no int8 kernel in XNNPACK; put fp16 or dynamic_int8 on such CPUs, "
              "full int8 on runtimes with integer kernels (ARM, NPUs)")
    base = next((m for m in ("fp16", "fp32", "dynamic_int8") if m in exports), None)
    common = [t for t in e.get("latency_ms", {}) if base and t in exports[base].get("latency_ms", {})]
    if base and common:
        t = "1" if "1" in common else common[0]
        ms, base_ms = e["latency_ms"][t]["median"], exports[base]["latency_ms"][t]["median"]
        ratio = ms / base_ms
        how = f"{ratio:.1f}x slower than" if ratio >= 1.05 else ("about as fast as" if ratio > 0.95 else
                                                                 f"{1 / ratio:.1f}x faster than")
        return (f"note: full int8 measured {how} {base} in this run ({ms:.2f} vs {base_ms:.2f} ms median, {t} "
                f"thread{'' if t == '1' else 's'}, {report.get('latency_process', 'tflite_runtime')})"
                + (f"; {advice}" if ratio >= 1.05 else ""))
    return (f"note: full int8 is for runtimes with integer kernels: on x86 with tflite-runtime 2.14 the project "
            f"measured its full-int8 student at {MEASURED_INT8_MS:.1f} ms against {MEASURED_FP16_MS:.2f} ms in fp16 "
            f"(1 thread, {MEASURED_INT8_MS / MEASURED_FP16_MS:.1f}x slower; benchmarks/latency_side_by_side.py); "
            "export fp16 too (--modes fp16,int8) to time both here")


def int8_warnings(report: dict) -> list[str]:
    """Printed and written to report.md and report.json: int8 over its NME budget, calibrated on few faces or on
    the faces it is scored on, and its speed against the float export."""
    e = report["exports"].get("int8")
    if not e:
        return []
    lines = []
    budget = e.get("int8_budget")
    if budget is not None and e["nme_relative_change"] > budget:
        lines.append(f"warning: int8 NME {e['nme_relative_change']:+.1%} against the Keras model, over the "
                     f"{budget * 100:g}% budget (--int8-budget): keep more blocks in float (--int8-float-blocks, "
                     "--int8-max-float-blocks) or calibrate on more faces like the ones it will see")
    n = e.get("calibration_images")
    if isinstance(n, int) and n < FEW_CALIBRATION_FACES:
        lines.append(few_calibration_faces(n, e.get("calibration_data")))
    if e.get("calibration_is_eval_data"):
        lines.append(f"note: int8 was calibrated on the faces it is scored on ({e['calibration_data']}), which "
                     "flatters its NME; pass --calibration-data with other faces for an honest figure")
    speed = int8_latency_note(report)
    if speed:
        lines.append(speed)
    return lines


def run_export(args: ExportConfig,
               silenced: Callable[[], ContextManager[object]] = contextlib.nullcontext) -> dict:
    """Convert `args.model` in each mode, audit, score and time every export, write report.json / report.md and
    return the report. `silenced` is a context manager factory that hides the converter's log output. Nothing is
    written until every mode has converted and passed the op audit."""
    modes, threads = list(args.modes), list(args.threads)
    # Before the model is loaded: refusals that need no model, each naming its flag or file.
    if not modes:  # nothing to export: the run would only delete an earlier export's files and report an empty table
        from .tflite_export import MODES

        raise ConfigError(f"--modes names no mode; choose from {', '.join(MODES)}")
    check_modes_runtime(modes, args.target_runtime)
    check_output_folder(args.output, args.model, modes, args.overwrite)
    check_not_single_image(args.data, "--data")
    from ..data import check_images_root

    check_images_root(args.images_root, [args.data] + ([args.calibration_data] if "int8" in modes else []),
                      args.data_format)
    if "int8" in modes:
        check_not_single_image(args.calibration_data, "--calibration-data")
    check_compare_models(args.compare)
    from ..data import load_dataset
    from ..data.pipeline import LandmarkPipeline, PipelineConfig
    from ..data.synthetic import ensure_default_dataset
    from ..models import float32_copy, load_model, model_image_size, model_scheme
    from ..outputs import prepare_output_dir
    from .benchmark import PROCESS_NOTE, measure_latency, process_note
    from .flops import count_flops
    from .op_audit import audit, read_model
    from .tflite_export import ExportedGraph, convert
    from .tflite_runner import scheme_file
    from ..predictor import KerasPredictor, TFLitePredictor

    model = float32_copy(load_model(args.model))  # the Keras reference computes as the export does: in float32
    scheme, size = model_scheme(model), model_image_size(model)
    prepare_output_dir(args.output)
    needed = (("test",) if args.data is None else ()) + (  # the synthetic splits this export uses, if any
        ("train",) if "int8" in modes and args.calibration_data is None else ())
    train_path, test_path = (None, None)
    if needed:
        if scheme.num_points not in (68, 51):  # the synthetic faces are 68-point (51 is their inner part)
            need = [{"test": "--data", "train": "--calibration-data"}[split] for split in needed]
            raise ConfigError(f"{args.model}: a {scheme.num_points}-point model; the default (synthetic) faces have 68 "
                              f"points: pass {' and '.join(need)} with faces in its layout")
        train_path, test_path = ensure_default_dataset(reuse_any=True, splits=needed)
    eval_path = args.data or test_path
    from ..evaluate import drawn_faces_warning, trained_on_real_faces

    drawn = None if args.data else drawn_faces_warning(args.model, eval_path)
    if drawn:
        print(drawn)
    calib_path, calib_samples, calib_labelled = args.calibration_data or train_path, [], True
    if "int8" in modes:  # only full int8 calibrates; loaded first, so a bad --calibration-data fails at once
        if args.calibration_data is None:
            print(f"int8 calibration on the synthetic faces ({train_path}): for a model of real photos, pass "
                  "--calibration-data with a few hundred of its own faces")
        calib_samples, calib_labelled = _load_calibration(calib_path, args, scheme.num_points)
    samples, load_report = load_dataset(eval_path, args.data_format, scheme.num_points, args.images_root)
    print(f"{eval_path}: {load_report.summary()}")  # as evaluate says it: a skipped record is never silent
    if args.max_eval:
        samples = samples[: args.max_eval]
    pipeline = LandmarkPipeline(scheme, PipelineConfig(image_size=size))
    images, affines, index = _crops(pipeline, samples)
    keras_pred = KerasPredictor(model)(images)
    keras_metrics = _nme(keras_pred, affines, index, samples, scheme)
    params = int(model.count_params())
    print(f"{args.model}: {params / 1e6:.2f}M parameters, {size}px input, {scheme.num_points} points; "
          f"Keras NME {keras_metrics['nme']:.4f} on {len(samples)} faces ({eval_path})")

    representative, float_blocks, sensitivity, calib_crops = None, [], None, []
    if "int8" in modes:
        calib_crops, calib_affines, calib_index = _crops(pipeline, calib_samples)
        representative = _representative(calib_crops)
        if calib_labelled:
            score = lambda pred: _nme(pred, calib_affines, calib_index, calib_samples, scheme)["nme"]  # noqa: E731
        else:
            score = _unlabelled_score(KerasPredictor(model)(calib_crops), keras_metrics["nme"],
                                      keras_metrics["normalization"], scheme)
        float_blocks, sensitivity = _choose_float_blocks(model, args, calib_crops, score)

    converted = {}  # every mode converted and audited before any file is written: no partial export
    start = time.perf_counter()
    with silenced():
        graph = ExportedGraph(model, args.heatmaps)  # exported once for every mode (most of a conversion's time)
    export_seconds = time.perf_counter() - start
    with graph:
        for mode in modes:
            start = time.perf_counter()
            with silenced():
                buffer = convert(graph, mode, representative, args.int8_io if mode == "int8" else False,
                                 args.heatmaps, float_blocks if mode == "int8" else ())
            seconds = time.perf_counter() - start
            converted[mode] = (buffer, audit(buffer, args.target_runtime, source=f"{mode} export of {args.model}"),
                               seconds)
    compare = {}  # measured before any file is written: a model that fails here leaves no half an export
    for other in args.compare:
        with open(other, "rb") as handle:
            buffer = handle.read()
        ops, runtime = read_model(buffer)
        compare[other] = {
            "size_bytes": len(buffer), "flops": count_flops(buffer), "min_runtime_version": runtime,
            "latency_ms": {str(t): measure_latency(other, t, runs=args.runs) for t in threads}}
    os.makedirs(args.output, exist_ok=True)
    with output_lock(args.output):  # two exports into one folder must not delete each other's files
        # Checked again under the lock: another convert.py may have written here since the check before the work.
        check_output_folder(args.output, args.model, modes, args.overwrite)
        inputs = [args.model, *args.compare] + [p for p in (args.data, args.calibration_data) if p]
        removed = _remove_earlier_export(args.output, keep=inputs)
        if removed:
            print(f"replacing the earlier export in {args.output} ({removed} files)")

        prefix = export_prefix(args.model)
        # A provisional report lists this run's files before any is written, so that an export stopped halfway
        # (Ctrl-C while timing) is still this model's: the same command then replaces it instead of refusing it.
        planned = {mode: {"file": os.path.join(args.output, f"{prefix}_{mode}.tflite")} for mode in converted}
        for entry in planned.values():
            entry["scheme_file"] = scheme_file(entry["file"])
        atomic_json(os.path.join(args.output, "report.json"), {
            "model": args.model, "model_path": os.path.realpath(args.model), "status": "partial",
            "exports": planned})
        # model_path: whose export this folder holds (check_output_folder); trained_on_real_faces: read by evaluate for
        # these .tflite files, which cannot say what they were trained on
        report = {"model": args.model, "model_path": os.path.realpath(args.model),
                  "trained_on_real_faces": trained_on_real_faces(args.model), "params": params, "image_size": size,
                  "num_points": scheme.num_points, "scheme": scheme.name, "target_runtime": args.target_runtime,
                  "eval_data": eval_path, "num_images": len(samples), **skipped_records(load_report),
                  "nme_keras": keras_metrics["nme"],
                  "normalization": keras_metrics["normalization"], "latency_process": PROCESS_NOTE, "exports": {},
                  "compare": compare, "graph_export_seconds": round(export_seconds, 1)}
        for mode, (buffer, result, seconds) in converted.items():
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
                "convert_seconds": round(seconds, 1),  # this mode alone, after the shared graph_export_seconds
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
                entry.update({"calibration_data": calib_path, "calibration_images": len(calib_crops),
                              "calibration_labelled": calib_labelled, "int8_budget": args.int8_budget,
                              "calibration_is_eval_data": os.path.realpath(calib_path) == os.path.realpath(eval_path)})
            report["exports"][mode] = entry
            lat = ", ".join(f"{t} thr {entry['latency_ms'][str(t)]['median']:.2f} ms" for t in threads)
            print(f"  {mode:>12}: {len(buffer) / 1e6:6.2f} MB, runtime >= {result.min_runtime_version}, NME "
                  f"{entry['nme_tflite']:.4f} (max dev {entry['max_deviation_px']:.3f} px), {lat} -> {path}")
        for other, c in compare.items():
            print(f"  compare {os.path.basename(other)}: {c['size_bytes'] / 1e6:.2f} MB, "
                  + ", ".join(f"{t} thr {c['latency_ms'][str(t)]['median']:.2f} ms" for t in threads))
        timed = [lat for e in report["exports"].values() for lat in e["latency_ms"].values()]
        if timed:  # the runtime the timing process found (LiteRT, or TensorFlow's where neither is installed)
            report["latency_process"] = process_note(timed[0])
        report["warnings"] = ([drawn] if drawn else []) + int8_warnings(report)
        for line in report["warnings"]:
            print(line)
        paths = {"json": os.path.join(args.output, "report.json"), "markdown": os.path.join(args.output, "report.md")}
        atomic_json(paths["json"], report)
        atomic_bytes(paths["markdown"], markdown(report, threads).encode())
        report["paths"] = paths
        return report


def skipped_records(load_report: LoadReport) -> dict:
    """report.json's record of the evaluation records the reader skipped: how many, and each with its reason."""
    return {"eval_skipped": len(load_report.skipped),
            "eval_skipped_files": [{"file": source, "reason": reason} for source, reason in load_report.skipped]}


def _skipped_line(report: dict) -> str:
    """report.md's note under the accuracy line when the reader skipped records ('' when none, or an older report)."""
    skipped = report.get("eval_skipped_files") or []
    if not skipped:
        return ""
    first = skipped[0]
    return (f" {len(skipped)} record{'' if len(skipped) == 1 else 's'} of `{report['eval_data']}` skipped (first: "
            f"`{first['file']}`: {first['reason']}; each with its reason in report.json).")


def _int8_lines(report: dict) -> list[str]:
    """report.md's int8 facts, which a deployer needs beside the table (report.json has them all)."""
    e = report["exports"].get("int8")
    if not e:
        return []
    where = "labelled faces" if e.get("calibration_labelled", True) else \
        "unlabelled photos, each face boxed by the face detector"
    chosen = "chosen by `--int8-float-blocks auto`" if "int8_sensitivity" in e else "as given by `--int8-float-blocks`"
    blocks = f"blocks {', '.join(f'`{b}`' for b in e['float_blocks'])} ({chosen})" if e.get("float_blocks") else \
        "no block (" + chosen + ")"
    s = e.get("int8_sensitivity")
    if s:
        simulated = f"simulated {(s['simulated_nme_chosen'] - s['simulated_nme_float']) / s['simulated_nme_float']:+.1%}" \
            " on the calibration faces" + ("" if e.get("calibration_labelled", True) else
                                            " (against the Keras model's landmarks: they have no labels)")
    else:
        simulated = "not simulated (blocks given)"
    budget = f"; budget {e['int8_budget'] * 100:g}%" if e.get("int8_budget") is not None else ""
    n = e.get("calibration_images", 0)
    image = ("int8 image (uint8 pixel - 128: scale 1/255, zero point -128)" if e.get("int8_io") else
             "float32 image in [0, 1]")
    return ["", f"**int8 export** (`{os.path.basename(e['file'])}`):", "",
            f"- calibration: {n} face{'' if n == 1 else 's'} of `{e['calibration_data']}` ({where})" +
            (" (**few**: 100-300 is usual)" if n < FEW_CALIBRATION_FACES else ""),
            f"- kept in float: the decode tail (heatmap softmax, AAM product, soft-argmax, peak share) and {blocks}",
            f"- relative NME change against the Keras model: {simulated}; measured {e['nme_relative_change']:+.1%} "
            f"on the evaluation faces{budget}",
            f"- input: {image}; outputs float32"]


def markdown(report: dict, threads: Sequence[int]) -> str:
    """report.md: one table row per export and per compared model, the int8 facts, and how latency was measured."""
    lines = [f"# TFLite export of `{report['model']}`", "",
             f"{report['params'] / 1e6:.2f}M parameters, {report['image_size']}px input, {report['num_points']} points. "
             f"Accuracy on {report['num_images']} faces of `{report['eval_data']}` ({report['normalization']} NME); "
             f"Keras model NME {report['nme_keras']:.4f}. Target runtime {report['target_runtime']}."
             + _skipped_line(report), ""]
    head = "| model | quantization | size (MB) | GFLOPs | min runtime | NME | max dev (px) | " + \
        " | ".join(f"{t} thread(s) median / p90 (ms)" for t in threads) + " |"
    lines += [head, "|" + "---|" * (7 + len(threads))]
    for mode, e in report["exports"].items():
        lat = " | ".join(f"{e['latency_ms'][str(t)]['median']:.2f} / {e['latency_ms'][str(t)]['p90']:.2f}" for t in threads)
        quantization = e["quantization"] + ("; int8 image input" if e.get("int8_io") else "")
        lines.append(f"| {mode} | {quantization} | {e['size_bytes'] / 1e6:.2f} | {e['flops'] / 1e9:.3f} | "
                     f"{e['min_runtime_version']} | {e['nme_tflite']:.4f} | {e['max_deviation_px']:.3f} | {lat} |")
    for name, c in report["compare"].items():
        lat = " | ".join(f"{c['latency_ms'][str(t)]['median']:.2f} / {c['latency_ms'][str(t)]['p90']:.2f}" for t in threads)
        lines.append(f"| {os.path.basename(name)} (compare) | - | {c['size_bytes'] / 1e6:.2f} | {c['flops'] / 1e9:.3f} | "
                     f"{c['min_runtime_version']} | - | - | {lat} |")
    lines += ["", f"max dev (px): the largest deviation of any landmark from the Keras model's, over the evaluation "
              f"faces, in crop pixels of the model's {report['image_size']}px input."]
    lines += _int8_lines(report)
    warnings = report.get("warnings", [])
    if warnings:
        lines += [""] + [f"**{w.split(':', 1)[0]}**:{w.split(':', 1)[1]}" for w in warnings]
    lines += ["", f"Latency: XNNPACK, batch 1, after 10 warm-up runs, measured on this machine in this run, each in a "
              f"{report.get('latency_process', 'separate process')}. In a "
              "process that has imported TensorFlow the interpreter binds TensorFlow's newer XNNPACK, which also "
              "runs int8 kernels that tflite_runtime's does not, and reads several times faster for int8. GFLOPs counted from the flatbuffer (2 x MACs of conv/FC/matmul, 1 per output element "
              "otherwise).", ""]
    return "\n".join(lines)
