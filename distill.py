"""Distil the teacher into the student: MobileViT-v2 + light AAM head trained with alpha * L_KD + L_STAR + L_AAM
(arXiv 2404.06029). The teacher is frozen and run in inference mode.

    python distill.py                        # student from runs/teacher/best.keras on the synthetic faces
    python distill.py --alpha 0 --output runs/student_scratch   # the ablation: same student, no teacher
"""
from __future__ import annotations

import dataclasses
import os
import sys

from landmark_kd.quiet import quiet_unless_verbose

quiet_unless_verbose(sys.argv)
from landmark_kd.cli import (ArgumentParser, add_training_arguments, non_negative_float, run,  # noqa: E402
                             training_config_from_args)
from landmark_kd.errors import MissingFileError  # noqa: E402
from landmark_kd.training import TrainConfig  # noqa: E402

DEFAULTS = TrainConfig(preset="mobilevitv2_050", output="runs/student", head_dim=64, learning_rate=2e-3, alpha=1.0,
                       epochs=12)
DEFAULT_TEACHER = os.path.join("runs", "teacher", "best.keras")


def _main(argv: list[str] | None) -> int:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    add_training_arguments(parser, DEFAULTS)
    g = parser.add_argument_group("distillation")
    g.add_argument("--teacher", default=DEFAULT_TEACHER, help="teacher .keras model (from train.py)")
    g.add_argument("--alpha", type=non_negative_float, default=DEFAULTS.alpha, help="weight of L_KD; 0 trains without the teacher")
    g.add_argument("--no-kd", action="store_true", help="same as --alpha 0: the from-scratch ablation")
    g.add_argument("--kd-mode", default=DEFAULTS.kd_mode, choices=("l2", "mse"),
                   help="l2: sum over landmarks of the L2 norm of the heatmap difference (paper); mse: mean squared")
    g.add_argument("--kd-raw", action="store_true", help="compare raw heatmaps instead of sum-normalised ones")
    g.add_argument("--unlabeled", default=None, help="folder of unlabelled face photos: each step also distils the "
                   "teacher's heatmaps on a batch of them (L_KD needs no ground truth; faces found by the detector)")
    args = parser.parse_args(argv)
    from landmark_kd.training import print_summary, run_training

    alpha = 0.0 if args.no_kd else args.alpha
    config = dataclasses.replace(training_config_from_args(args, DEFAULTS), alpha=alpha, kd_mode=args.kd_mode,
                                 kd_normalize=not args.kd_raw, teacher=args.teacher if alpha > 0 else None,
                                 unlabeled=args.unlabeled)
    if alpha > 0 and not os.path.isfile(args.teacher):
        raise MissingFileError(f"no teacher at {args.teacher}. Train one first with `python train.py` (it writes "
                               "runs/teacher/best.keras), pass --teacher PATH, or run the no-teacher ablation with --no-kd.")
    metrics = run_training(config)
    print_summary(metrics)
    if alpha > 0:
        print(f"  distilled from {config.teacher} with alpha={alpha:g} ({config.kd_mode})")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
