"""Train the teacher: SwinV2 + AAM heatmap head with L_STAR + L_AAM (arXiv 2404.06029).

    python train.py                 # quick teacher on the embedded synthetic faces (35-80 min on 2 CPU cores)
    python train.py --preset swinv2_tiny --image-size 256 --train-data WFLW/list_98pt_rect_attr_train.txt \
        --val-data WFLW/list_98pt_rect_attr_test.txt --images-root WFLW/WFLW_images --scheme 98
"""
from __future__ import annotations

import sys

from landmark_kd.quiet import quiet_unless_verbose

quiet_unless_verbose(sys.argv)
from landmark_kd.cli import (TRAINING_INTERRUPTED, ArgumentParser, add_training_arguments, run,  # noqa: E402
                             training_config_from_args)
from landmark_kd.training import TrainConfig  # noqa: E402

DEFAULTS = TrainConfig()


def config_from_argv(argv: list[str] | None) -> TrainConfig:
    """The TrainConfig train.py's flags describe (with none: `TrainConfig()`, the teacher's setup)."""
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    add_training_arguments(parser, DEFAULTS)
    return training_config_from_args(parser.parse_args(argv), DEFAULTS)


def _main(argv: list[str] | None) -> int:
    config = config_from_argv(argv)
    from landmark_kd.training import print_summary, run_training

    print_summary(run_training(config))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run(_main, argv, TRAINING_INTERRUPTED)


if __name__ == "__main__":
    sys.exit(main())
