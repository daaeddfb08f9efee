"""Distil the teacher into the student: MobileViT-v2 + light AAM head trained with alpha * L_KD + L_STAR + L_AAM
(arXiv 2404.06029). The teacher is frozen and run in inference mode.

    python distill.py                        # student from runs/teacher/best.keras on the synthetic faces
    python distill.py --alpha 0 --output runs/student_scratch   # the ablation: same student, no teacher
    python distill.py --teacher a.keras b.keras --teacher-flip  # an ensemble teacher, flip-averaged
    python distill.py --feature-kd 10        # also distil the teacher's head features (CWD)
"""
from __future__ import annotations

import dataclasses
import sys

from landmark_kd.quiet import quiet_unless_verbose

quiet_unless_verbose(sys.argv)
from landmark_kd.cli import (TRAINING_INTERRUPTED, ArgumentParser, add_training_arguments, non_negative_float,  # noqa: E402
                             positive_float, run, training_config_from_args)
from landmark_kd.teacher import check_teacher_files, teacher_paths  # noqa: E402
from landmark_kd.training import TrainConfig  # noqa: E402

DEFAULTS = TrainConfig.student()  # the library's student defaults: the two cannot drift apart


def _parser() -> ArgumentParser:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    add_training_arguments(parser, DEFAULTS)
    g = parser.add_argument_group("distillation")
    g.add_argument("--teacher", nargs="+", default=None, metavar="MODEL",
                   help=f"teacher .keras model (from train.py), the run folder holding it as best.keras, or a shipped "
                   f"model by its file name (real_teacher.keras); several: "
                   f"an ensemble, their heatmaps averaged (default: {DEFAULTS.teacher})")
    g.add_argument("--teacher-flip", action="store_true", help="average each teacher's heatmaps with its prediction "
                   "on the mirrored image (flip test): a stronger teacher for one more forward pass")
    g.add_argument("--alpha", type=non_negative_float, default=None,
                   help=f"weight of L_KD (default: {DEFAULTS.alpha:g}); 0 trains without the teacher")
    g.add_argument("--no-kd", action="store_true", help="same as --alpha 0: the from-scratch ablation")
    g.add_argument("--kd-mode", default=DEFAULTS.kd_mode, choices=("l2", "mse", "star"),
                   help="l2: sum over landmarks of the L2 norm of the heatmap difference (paper); mse: mean squared; "
                   "star: L_STAR's error term against the landmarks the teacher's heatmaps decode to")
    g.add_argument("--kd-raw", action="store_true", help="compare raw heatmaps instead of sum-normalised ones")
    g.add_argument("--feature-kd", type=non_negative_float, default=DEFAULTS.feature_kd, metavar="WEIGHT",
                   help="also distil the teacher's head features (channel-wise distillation through a trained 1x1 "
                   f"projection) with this weight; one teacher (default: {DEFAULTS.feature_kd:g}, off)")
    g.add_argument("--feature-kd-tau", type=positive_float, default=DEFAULTS.feature_kd_tau, metavar="TAU",
                   help=f"softmax temperature of --feature-kd (default: {DEFAULTS.feature_kd_tau:g})")
    g.add_argument("--unlabeled", default=None, help="folder of unlabelled face photos: each step also distils the "
                   "teacher's heatmaps on a batch of them (L_KD needs no ground truth; faces found by the detector)")
    return parser


def config_from_argv(argv: list[str] | None) -> TrainConfig:
    """The TrainConfig distill.py's flags describe (with none: `TrainConfig.student()`); contradictory flags are
    refused by the parser, before any work."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.no_kd and args.alpha:  # the ablation would run, and the alpha asked for be silently dropped
        parser.error(f"--no-kd trains without the teacher (alpha 0), --alpha {args.alpha:g} asks for it: pass one")
    if args.kd_raw and args.kd_mode == "star":  # star reads each map's mean, which no scale changes
        parser.error("--kd-raw compares raw heatmaps, --kd-mode star compares the landmarks they decode to: pass one")
    alpha = 0.0 if args.no_kd else DEFAULTS.alpha if args.alpha is None else args.alpha
    asked = [flag for flag, given in (("--teacher", args.teacher), ("--teacher-flip", args.teacher_flip),
                                      ("--unlabeled", args.unlabeled), ("--kd-mode", args.kd_mode != DEFAULTS.kd_mode),
                                      ("--kd-raw", args.kd_raw), ("--feature-kd", args.feature_kd)) if given]
    if alpha == 0 and asked:  # else the teacher named would be silently left out of the run it was meant for
        without = "--no-kd" if args.no_kd else "--alpha 0"
        parser.error(f"{without} trains without a teacher, {' and '.join(asked)} asks for one: pass one or the other")
    paths = teacher_paths(args.teacher or [DEFAULTS.teacher])  # a run folder stands for its best.keras
    if args.feature_kd and len(paths) > 1:  # different models' channels do not line up: nothing to average
        parser.error(f"--feature-kd distils one teacher's features; --teacher names {len(paths)} models: pass one")
    teacher = (paths[0] if len(paths) == 1 else paths) if alpha > 0 else None
    return dataclasses.replace(training_config_from_args(args, DEFAULTS), alpha=alpha, kd_mode=args.kd_mode,
                               kd_normalize=not args.kd_raw, feature_kd=args.feature_kd,
                               feature_kd_tau=args.feature_kd_tau, teacher=teacher, teacher_flip=args.teacher_flip,
                               unlabeled=args.unlabeled)


def _main(argv: list[str] | None) -> int:
    config = config_from_argv(argv)
    from landmark_kd.training import print_summary, run_training

    if config.teacher:
        check_teacher_files(config.teacher)
    metrics = run_training(config)
    print_summary(metrics)
    if config.alpha > 0:
        flip = ", flip-averaged" if config.teacher_flip else ""
        features = f", head features with weight {config.feature_kd:g}" if config.feature_kd else ""
        print(f"  distilled from {', '.join(teacher_paths(config.teacher))}{flip} with alpha={config.alpha:g} "
              f"({config.kd_mode}){features}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(_main, argv, TRAINING_INTERRUPTED)


if __name__ == "__main__":
    sys.exit(main())
