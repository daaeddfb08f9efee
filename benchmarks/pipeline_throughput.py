"""Input-pipeline images/s (decode, crop/augment, heatmap + edge targets) on the synthetic faces.

    python benchmarks/pipeline_throughput.py --image-size 128 --batches 40
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from landmark_kd.quiet import quiet_tensorflow  # noqa: E402

quiet_tensorflow()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--scheme", default="68")
    args = parser.parse_args()
    from landmark_kd.data import load_dataset
    from landmark_kd.data.pipeline import LandmarkPipeline, PipelineConfig
    from landmark_kd.data.synthetic import ensure_default_dataset
    from landmark_kd.schemes import get_scheme

    train, _ = ensure_default_dataset()
    samples, _ = load_dataset(train, num_points=68)
    pipeline = LandmarkPipeline(get_scheme(args.scheme), PipelineConfig(image_size=args.image_size))
    for training in (True, False):
        ds = pipeline.dataset(samples, args.batch_size, training=training, repeat=True)
        it = iter(ds)
        for _ in range(5):
            next(it)
        start = time.perf_counter()
        for _ in range(args.batches):
            next(it)
        rate = args.batches * args.batch_size / (time.perf_counter() - start)
        print(f"pipeline ({'augmented' if training else 'evaluation'}, {args.image_size}px): {rate:.0f} images/s")


if __name__ == "__main__":
    main()
