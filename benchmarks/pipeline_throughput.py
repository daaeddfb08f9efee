"""Input-pipeline images/s (decode, crop/augment, heatmap + edge targets) on the synthetic faces.

    python benchmarks/pipeline_throughput.py --image-size 128 --batches 40

`benchmarks/train_throughput.py` sets this rate against what the training step consumes.
"""
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from landmark_kd.cli import ArgumentParser, positive_int, run  # noqa: E402
from landmark_kd.quiet import quiet_tensorflow  # noqa: E402

quiet_tensorflow()


def measure_pipeline(image_size: int = 128, batch_size: int = 16, batches: int = 40, scheme: str = "68") -> dict:
    """images/s of the augmented (training) and plain (evaluation) pipelines after 5 warm-up batches."""
    from landmark_kd.data import load_dataset
    from landmark_kd.data.pipeline import LandmarkPipeline, PipelineConfig
    from landmark_kd.data.synthetic import ensure_default_dataset
    from landmark_kd.schemes import get_scheme

    scheme = get_scheme(scheme)
    train, _ = ensure_default_dataset(os.path.join(ROOT, "data", "synthetic"))
    samples, _ = load_dataset(train, num_points=scheme.num_points)
    pipeline = LandmarkPipeline(scheme, PipelineConfig(image_size=image_size))
    rates = {}
    for training in (True, False):
        it = iter(pipeline.dataset(samples, batch_size, training=training, repeat=True))
        for _ in range(5):
            next(it)
        start = time.perf_counter()
        for _ in range(batches):
            next(it)
        rates["augmented" if training else "evaluation"] = batches * batch_size / (time.perf_counter() - start)
    return rates


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image-size", type=positive_int, default=128, help="crop size in pixels")
    parser.add_argument("--batch-size", type=positive_int, default=16, help="faces per batch")
    parser.add_argument("--batches", type=positive_int, default=40, help="timed batches after 5 warm-up ones")
    parser.add_argument("--scheme", default="68", help="landmark scheme of the synthetic faces")
    args = parser.parse_args(argv)
    for kind, rate in measure_pipeline(args.image_size, args.batch_size, args.batches, args.scheme).items():
        print(f"pipeline ({kind}, {args.image_size}px): {rate:.0f} images/s")
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
