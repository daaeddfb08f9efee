"""Student TFLite efficiency: fp32 GFLOP/s of the student against a plain Keras MobileNetV2 of similar FLOPs,
converted and timed the same way (tflite_runtime, XNNPACK) in the same run. Target ratio >= 0.70.

    python benchmarks/tflite_efficiency.py                          # untrained default student architecture
    python benchmarks/tflite_efficiency.py --model runs/student/best.keras --compare face_landmark.tflite
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from landmark_kd.cli import ArgumentParser, model_path, positive_int, positive_int_list, run  # noqa: E402
from landmark_kd.outputs import atomic_json  # noqa: E402
from landmark_kd.quiet import quiet_tensorflow, silenced  # noqa: E402

quiet_tensorflow()


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, type=model_path,
                        help=".keras landmark model (default: untrained student architecture)")
    parser.add_argument("--preset", default="mobilevitv2_050", help="backbone of the untrained student (without --model)")
    parser.add_argument("--image-size", type=positive_int, default=128, help="its input size in pixels")
    parser.add_argument("--threads", type=positive_int_list, default=[1, 2], help="comma-separated thread counts "
                        "(default: 1,2)")
    parser.add_argument("--runs", type=positive_int, default=100, help="timed invocations per model and thread count")
    parser.add_argument("--compare", action="append", default=[], type=model_path,
                        help="other .tflite files to time alongside")
    parser.add_argument("--out", default=os.path.join("runs", "benchmarks", "tflite_efficiency.json"),
                        help="where the results are written as JSON")
    args = parser.parse_args(argv)
    import keras
    import tensorflow as tf

    from landmark_kd.export.benchmark import measure_latency
    from landmark_kd.export.flops import count_flops
    from landmark_kd.export.tflite_export import convert
    from landmark_kd.models import HeadConfig, build_landmark_model, load_model

    student = load_model(args.model) if args.model else build_landmark_model(
        args.preset, "68", args.image_size, HeadConfig(64, 2, True))
    size = int(student.input_shape[1])
    with silenced():
        buffers = {"student": convert(student, "fp32")}
    target = count_flops(buffers["student"])
    best = None
    for alpha in (0.35, 0.5, 0.75, 1.0):  # MobileNetV2 width closest in FLOPs at the same input size
        net = keras.applications.MobileNetV2(input_shape=(size, size, 3), alpha=alpha, include_top=False, weights=None)
        with silenced():
            buffer = tf.lite.TFLiteConverter.from_keras_model(net).convert()
        flops = count_flops(buffer)
        if best is None or abs(flops - target) < abs(best[2] - target):
            best = (alpha, buffer, flops)
    buffers[f"mobilenetv2_{best[0]}"] = best[1]
    for path in args.compare:
        buffers[os.path.basename(path)] = open(path, "rb").read()
    threads = args.threads
    results = {}
    for name, buffer in buffers.items():
        flops = count_flops(buffer)
        lat = {t: measure_latency(buffer, t, runs=args.runs) for t in threads}
        results[name] = {"flops": flops, "size_bytes": len(buffer),
                         "latency_ms": {str(t): lat[t] for t in threads},
                         "gflops_per_s": {str(t): flops / 1e9 / (lat[t]["median"] / 1e3) for t in threads}}
        print(f"{name:>22}: {flops / 1e9:.3f} GFLOPs, {len(buffer) / 1e6:.2f} MB, "
              + ", ".join(f"{t} thr {lat[t]['median']:.2f} ms ({results[name]['gflops_per_s'][str(t)]:.1f} GFLOP/s)"
                          for t in threads))
    ref = f"mobilenetv2_{best[0]}"
    ratio = {str(t): results["student"]["gflops_per_s"][str(t)] / results[ref]["gflops_per_s"][str(t)] for t in threads}
    print("student / MobileNetV2 GFLOP/s: " + ", ".join(f"{t} thread(s) {ratio[str(t)]:.2f}" for t in threads)
          + " (target >= 0.70 at 1 thread)")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    atomic_json(args.out, {"results": results, "reference": ref, "ratio": ratio})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
