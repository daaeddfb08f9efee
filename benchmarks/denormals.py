"""TFLite latency as a device sees it (a process with only numpy + tflite_runtime) against the same model timed
inside this TensorFlow process, for each export mode at 1 and 2 threads, side by side in a markdown table.

    python benchmarks/denormals.py --model runs/student/best.keras
    python benchmarks/denormals.py --model runs/teacher/best.keras --modes fp32,int8 --threads 1 --runs 100

Why the two differ: importing TensorFlow (2.20 here) makes tflite_runtime's interpreter create TensorFlow's newer
XNNPACK delegate (its TfLiteXNNPackDelegateCreate* symbols bind to libtensorflow_cc), which also runs int8,
hybrid and more float ops; a tflite_runtime-only process gets tflite_runtime's own (2.14: float ops only).
Full-int8 calibration uses random crops unless --calibration-data is given (latency barely depends on it).
"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from landmark_kd.cli import (ArgumentParser, existing_path, model_path, non_negative_int, positive_int,  # noqa: E402
                             positive_int_list, run)
from landmark_kd.quiet import quiet_tensorflow, silenced  # noqa: E402

quiet_tensorflow()
MODES = ("fp32", "fp16", "dynamic_int8", "int8")


def _representative(model, calibration: str | None, samples: int):
    """Full-int8 calibration crops: evenly spaced faces from `calibration` cropped as convert.py does, else
    random crops."""
    import numpy as np

    size = int(model.input_shape[1])
    if calibration:
        from landmark_kd.data import load_dataset
        from landmark_kd.data.pipeline import LandmarkPipeline, PipelineConfig
        from landmark_kd.export.report import _crops
        from landmark_kd.models import model_scheme

        scheme = model_scheme(model)
        faces, _ = load_dataset(calibration, "auto", scheme.num_points, None)
        pick = np.unique(np.linspace(0, len(faces) - 1, min(samples, len(faces))).astype(int))
        crops = _crops(LandmarkPipeline(scheme, PipelineConfig(image_size=size)), [faces[i] for i in pick])[0]
    else:
        crops = np.random.default_rng(0).uniform(0, 1, (samples, size, size, 3))

    def generate():
        for crop in crops:
            yield [np.asarray(crop, np.float32)[None]]

    return generate


def main(argv=None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])  # cli.HelpFormatter shows the real defaults
    parser.add_argument("--model", required=True, type=model_path, help=".keras landmark model")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated subset of {', '.join(MODES)}")
    parser.add_argument("--threads", default="1,2", type=positive_int_list, help="comma-separated thread counts")
    parser.add_argument("--runs", type=positive_int, default=50, help="timed invocations per measurement")
    parser.add_argument("--warmup", type=non_negative_int, default=10, help="untimed invocations first")
    parser.add_argument("--calibration-data", default=None, type=existing_path,
                        help="faces for full-int8 calibration (default: random crops)")
    parser.add_argument("--calibration-samples", type=positive_int, default=16,
                        help="crops the full-int8 export is calibrated on")
    parser.add_argument("--save", default=None, help="folder to keep the .tflite files in (default: temporary)")
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        parser.error(f"unknown mode(s) {bad}; choose from {MODES}" if bad else f"--modes names no mode; choose from {MODES}")
    threads = args.threads
    if not os.path.isfile(args.model):
        parser.error(f"{args.model}: model file not found")

    from landmark_kd.export.benchmark import measure_latency
    from landmark_kd.export.tflite_export import ExportedGraph, convert
    from landmark_kd.models import load_model

    model = load_model(args.model)
    size = int(model.input_shape[1])
    representative = _representative(model, args.calibration_data, args.calibration_samples)
    folder = args.save or tempfile.mkdtemp(prefix="denormals_")
    os.makedirs(folder, exist_ok=True)
    rows = []
    with silenced():
        graph = ExportedGraph(model)  # one export for every mode
    with graph:
        for mode in modes:
            with silenced():
                buffer = convert(graph, mode, representative if mode == "int8" else None)
            path = os.path.join(folder, f"{os.path.splitext(os.path.basename(args.model))[0]}_{mode}.tflite")
            with open(path, "wb") as handle:
                handle.write(buffer)
            cells = [mode, f"{len(buffer) / 1e6:.2f} MB"]
            for t in threads:
                iso = measure_latency(path, t, args.warmup, args.runs, isolated=True)["median"]
                with silenced():
                    inp = measure_latency(path, t, args.warmup, args.runs, isolated=False)["median"]
                cells += [f"{iso:.2f}", f"{inp:.2f}", f"{iso / inp:.2f}x"]
            rows.append(cells)
            print(f"{mode}: done", file=sys.stderr, flush=True)
    header = ["mode", "size"]
    for t in threads:
        header += [f"{t}T tflite_runtime only (ms)", f"{t}T in TF process (ms)", f"{t}T ratio"]
    print(f"\n`{args.model}`, {size} px, median of {args.runs} runs after {args.warmup} warm-up\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for cells in rows:
        print("| " + " | ".join(cells) + " |")
    if args.save:
        print(f"\nmodels kept in {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
