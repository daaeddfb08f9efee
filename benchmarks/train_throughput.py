"""Training throughput: Keras train step (eager graph and XLA) against the same backbones, head and losses in
PyTorch (transformers Swinv2Model / MobileViTV2Model), same batch, input size and thread count; and the input
pipeline against what the training step consumes. Every figure comes from this one run; ratios are printed.

    pip install -r requirements-bench.txt      # torch (CPU) + transformers, benchmark-only
    python benchmarks/train_throughput.py      # default teacher and student, 128 px, batch 16
    python benchmarks/train_throughput.py --image-size 256 --teacher-preset swinv2_tiny   # the paper's sizes

Each measurement runs in a subprocess of its own; in the paired one the Keras and PyTorch steps alternate in one
process, so both see the same moments of a shared CPU and neither's thread pool runs while the other's does.
"""
import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from landmark_kd.cli import ArgumentParser, non_negative_int, positive_int, run  # noqa: E402
from landmark_kd.outputs import atomic_json  # noqa: E402
from landmark_kd.quiet import quiet_tensorflow  # noqa: E402

quiet_tensorflow()

# (preset flag, head dim, light head): the train.py and distill.py defaults.
MODELS = {"teacher": ("teacher_preset", 96, False), "student": ("student_preset", 64, True)}


def random_batch(batch: int, size: int, num_points: int, num_edges: int, seed: int = 0) -> tuple:
    """A fixed NHWC batch with plausible targets: Gaussian heatmaps at random landmarks."""
    import numpy as np

    rng = np.random.default_rng(seed)
    hm = size // 4
    x = rng.random((batch, size, size, 3), dtype=np.float32)
    landmarks = rng.uniform(-0.8, 0.8, (batch, num_points, 2)).astype(np.float32)
    pix = (landmarks + 1) / 2 * (hm - 1)
    grid = np.arange(hm, dtype=np.float32)
    gx = np.exp(-(grid[None, None, :] - pix[..., :1]) ** 2 / (2 * 1.5 ** 2))  # (B, N, W)
    gy = np.exp(-(grid[None, None, :] - pix[..., 1:]) ** 2 / (2 * 1.5 ** 2))  # (B, N, H)
    heatmaps = np.einsum("bnh,bnw->bhwn", gy, gx).astype(np.float32)
    edges = (rng.random((batch, hm, hm, num_edges), dtype=np.float32) ** 8)
    return x, {"landmarks": landmarks, "heatmaps": heatmaps, "edges": edges}


def step_rates(times: list, batch: int) -> dict:
    """images/s from the median step (robust to a noisy shared CPU) and from the mean."""
    import numpy as np

    return {"images_per_s": batch / float(np.median(times)), "images_per_s_mean": batch / float(np.mean(times)),
            "step_ms_median": 1e3 * float(np.median(times)), "step_ms_p90": 1e3 * float(np.percentile(times, 90))}


def keras_trainer(args, data: str = "memory"):
    """(step function, params): the Keras train step of train.py / distill.py (`LandmarkTrainer.train_step`)."""
    import keras
    import tensorflow as tf

    from landmark_kd.models import HeadConfig, build_landmark_model
    from landmark_kd.schemes import get_scheme
    from landmark_kd.trainer import LandmarkTrainer
    from landmark_kd.training import TrainConfig

    _, dim, light = MODELS[args.model]
    preset = getattr(args, MODELS[args.model][0])
    scheme = get_scheme("68")
    config = TrainConfig(preset=preset, image_size=args.image_size, head_dim=dim, batch_size=args.batch_size, xla=args.xla)
    keras.utils.set_random_seed(0)
    model = build_landmark_model(preset, scheme, args.image_size, HeadConfig(dim, config.head_convs, light))
    trainer = LandmarkTrainer(model, config)
    trainer.compile(optimizer=keras.optimizers.AdamW(config.learning_rate, weight_decay=config.weight_decay,
                                                     clipnorm=config.clipnorm), jit_compile=args.xla)
    if data == "pipeline":  # the real augmented input pipeline feeding the step, as train.py runs it
        from landmark_kd.data import load_dataset
        from landmark_kd.data.pipeline import LandmarkPipeline, PipelineConfig
        from landmark_kd.data.synthetic import ensure_default_dataset

        train, _ = ensure_default_dataset(os.path.join(ROOT, "data", "synthetic"))
        samples, _ = load_dataset(train, num_points=scheme.num_points)
        ds = LandmarkPipeline(scheme, PipelineConfig(image_size=args.image_size)).dataset(
            samples, args.batch_size, training=True, repeat=True)
    else:
        x, targets = random_batch(args.batch_size, args.image_size, scheme.num_points, scheme.num_edges)
        ds = tf.data.Dataset.from_tensors((x, targets)).repeat()
    iterator = iter(ds)
    trainer.optimizer.build(model.trainable_variables)
    train_step = tf.function(trainer.train_step, jit_compile=args.xla)  # what fit compiles, one step at a time

    def step():
        return float(train_step(next(iterator))["loss"])  # the float waits for the step to finish

    return step, model.count_params()


def torch_trainer(args):
    import torch

    from benchmarks.torch_reference import TorchLandmarkTrainer
    from landmark_kd.schemes import get_scheme

    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count())  # TensorFlow uses every core too
    _, dim, light = MODELS[args.model]
    scheme = get_scheme("68")
    trainer = TorchLandmarkTrainer(getattr(args, MODELS[args.model][0]), args.image_size, dim, 2, light, scheme)
    x, targets = random_batch(args.batch_size, args.image_size, scheme.num_points, scheme.num_edges)
    x = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
    targets = {"landmarks": torch.from_numpy(targets["landmarks"]),
               "heatmaps": torch.from_numpy(targets["heatmaps"]).permute(0, 3, 1, 2).contiguous(),
               "edges": torch.from_numpy(targets["edges"]).permute(0, 3, 1, 2).contiguous()}
    return (lambda: trainer.step(x, targets)), trainer.count_params()


def time_steps(steps: dict, args) -> dict:
    """Warm up each step function, then time them in alternation (A, B, A, B, ...) so that a shared CPU's
    drifting speed affects all of them alike."""
    results = {}
    for name, (step, params) in steps.items():
        start = time.perf_counter()
        for _ in range(args.warmup):
            step()
        results[name] = {"warmup_s": time.perf_counter() - start, "params": params, "times": []}
    for _ in range(args.steps):
        for name, (step, _) in steps.items():
            start = time.perf_counter()
            step()
            results[name]["times"].append(time.perf_counter() - start)
    return {name: {**step_rates(r.pop("times"), args.batch_size), **r} for name, r in results.items()}


def paired_worker(args) -> dict:
    """Keras (graph mode) and PyTorch in one process, their steps alternated."""
    import torch

    out = time_steps({"keras": keras_trainer(args), "torch": torch_trainer(args)}, args)
    out["torch"].update(threads=torch.get_num_threads(), version=torch.__version__)
    return out


def keras_worker(args) -> dict:
    """Keras alone: with --xla, or fed by the real input pipeline (--data pipeline) alternated with the same
    step fed from memory."""
    steps = {"keras": keras_trainer(args, args.data)}
    if args.data == "pipeline":
        steps["memory"] = keras_trainer(args)
    return time_steps(steps, args)


def pipeline_worker(args) -> dict:
    from benchmarks.pipeline_throughput import measure_pipeline

    return {"images_per_s": measure_pipeline(args.image_size, args.batch_size, batches=40)["augmented"]}


def run_worker(args, framework: str, model: str = "", xla: bool = False, data: str = "memory",
               env: dict | None = None) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", framework, "--model", model, "--data", data,
           "--image-size", str(args.image_size), "--batch-size", str(args.batch_size), "--steps", str(args.steps),
           "--warmup", str(args.warmup), "--teacher-preset", args.teacher_preset, "--student-preset", args.student_preset]
    if xla:
        cmd.append("--xla")
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, **(env or {})})
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}
    return json.loads(lines[-1])


def torch_missing() -> list[str]:
    """The PyTorch reference's packages that are not installed (requirements-bench.txt holds them)."""
    return [name for name in ("torch", "transformers") if importlib.util.find_spec(name) is None]


def pick(result: dict, name: str) -> dict:
    """One measurement from a worker's result, or the worker's {"error": ...} so a failure is reported."""
    return result.get(name, result)


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image-size", type=positive_int, default=128, help="input size in pixels")
    parser.add_argument("--batch-size", type=positive_int, default=16, help="images per train step")
    parser.add_argument("--steps", type=positive_int, default=20, help="timed steps after warm-up")
    parser.add_argument("--warmup", type=non_negative_int, default=5, help="untimed steps first (graph tracing)")
    parser.add_argument("--teacher-preset", default="swinv2_nano", help="the teacher row's backbone")
    parser.add_argument("--student-preset", default="mobilevitv2_050", help="the student row's backbone")
    parser.add_argument("--models", default="teacher,student", help="comma-separated rows: teacher, student")
    parser.add_argument("--no-torch", action="store_true", help="Keras and pipeline figures only (the default "
                        "when torch or transformers is not installed)")
    parser.add_argument("--onednn-off-too", action="store_true",
                        help="also time the Keras step with TF_ENABLE_ONEDNN_OPTS=0 (its own process, run after)")
    parser.add_argument("--out", default=os.path.join("runs", "benchmarks", "train_throughput.json"),
                        help="where the results are written as JSON")
    parser.add_argument("--worker", choices=("keras", "paired", "pipeline"), help=argparse.SUPPRESS)
    parser.add_argument("--model", default="", help=argparse.SUPPRESS)
    parser.add_argument("--xla", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data", default="memory", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker = {"keras": keras_worker, "paired": paired_worker, "pipeline": pipeline_worker}[args.worker]
        print(json.dumps(worker(args)), flush=True)
        return 0
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if not models or not set(models) <= set(MODELS):
        parser.error(f"--models {args.models}: choose from {', '.join(MODELS)}")
    missing = [] if args.no_torch else torch_missing()
    if missing:  # the Keras figures need no torch: measure them and say once why the PyTorch column is absent
        print(f"{' and '.join(missing)} not installed: no PyTorch column (pip install -r requirements-bench.txt, "
              "or --no-torch to skip it)", file=sys.stderr)
        args.no_torch = True

    print(f"train step, batch {args.batch_size}, {args.image_size}px, {os.cpu_count()} CPU threads, "
          f"{args.warmup} warm-up + {args.steps} timed steps, images/s from the median step")
    results = {"image_size": args.image_size, "batch_size": args.batch_size, "steps": args.steps, "models": {}}
    for model in models:
        preset = getattr(args, MODELS[model][0])
        row = {"preset": preset}
        if args.no_torch:
            row["keras"] = pick(run_worker(args, "keras", model), "keras")
        else:
            paired = run_worker(args, "paired", model)
            row["keras"], row["torch"] = pick(paired, "keras"), pick(paired, "torch")
        row["keras_xla"] = pick(run_worker(args, "keras", model, xla=True), "keras")
        if args.onednn_off_too:
            row["keras_onednn_off"] = pick(run_worker(args, "keras", model, env={"TF_ENABLE_ONEDNN_OPTS": "0"}), "keras")
        fed = run_worker(args, "keras", model, data="pipeline")
        row["keras_pipeline"], row["keras_memory_alternated"] = pick(fed, "keras"), pick(fed, "memory")
        results["models"][model] = row
        rate = {k: v.get("images_per_s") for k, v in row.items() if isinstance(v, dict)}
        print(f"{model:8s} {preset:16s} " + "  ".join(
            f"{k} {v:.1f}" if v else f"{k} failed ({row[k].get('error')})" for k, v in rate.items()), flush=True)
        if rate.get("torch") and rate.get("keras"):
            row["keras_over_torch"] = rate["keras"] / rate["torch"]
            print(f"{'':25s} Keras / PyTorch {row['keras_over_torch']:.2f}x (alternated steps, one process; "
                  f"target >= 1.0x); XLA / graph {(rate.get('keras_xla') or 0) / rate['keras']:.2f}x")
        if rate.get("keras_pipeline") and rate.get("keras_memory_alternated"):
            row["pipeline_fed_over_memory"] = rate["keras_pipeline"] / rate["keras_memory_alternated"]
            print(f"{'':25s} fed by the augmented pipeline: {row['pipeline_fed_over_memory']:.2f}x the in-memory rate")
        if rate.get("keras_onednn_off") and rate.get("keras"):
            row["onednn_on_over_off"] = rate["keras"] / rate["keras_onednn_off"]
            print(f"{'':25s} oneDNN on / off {row['onednn_on_over_off']:.2f}x (separate processes, one after the other)")
    pipe = run_worker(args, "pipeline")
    results["pipeline"] = pipe
    fastest = max(r["keras"].get("images_per_s") or 0 for r in results["models"].values())
    if "images_per_s" in pipe and fastest:
        results["fastest_train_images_per_s"] = fastest
        results["pipeline_over_consumption"] = pipe["images_per_s"] / fastest
        print(f"input pipeline (augmented, alone) {pipe['images_per_s']:.0f} img/s = "
              f"{results['pipeline_over_consumption']:.1f}x the fastest train step's consumption   target >= 3x")
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    atomic_json(args.out, results)
    print(f"written {args.out}")
    measured = "images_per_s" in pipe or any("images_per_s" in v for row in results["models"].values()
                                               for v in row.values() if isinstance(v, dict))
    if not measured:
        print("error: no figure could be measured (each measurement's failure is above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
