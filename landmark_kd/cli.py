"""Shared CLI helpers."""
from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
from typing import TYPE_CHECKING, Callable, NoReturn

if TYPE_CHECKING:
    from .training import TrainConfig


class HelpFormatter(argparse.HelpFormatter):
    """Appends '(default: X)' unless the help already explains the default or there is none to show."""

    def _get_help_string(self, action):
        text = action.help or ""
        # compared by identity: `0 in (False, ...)` is true, which hid a real default of 0 (--seed)
        unset = any(action.default is none for none in (None, False, argparse.SUPPRESS)) or action.default == []
        if "default" in text or unset or not action.option_strings:
            return text
        return text + " (default: %(default)s)"


def _checked(text: str, convert, expected: str, ok, requirement: str):
    """argparse type body: convert `text`, then refuse values that fail `ok`, naming what was wanted."""
    try:
        value = convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"must be {requirement}, got {text}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (so 0 or -1 is refused before any work, not after it)."""
    return _checked(text, int, "a whole number", lambda v: v >= 1, "at least 1")


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0 (a camera index, say)."""
    return _checked(text, int, "a whole number", lambda v: v >= 0, "0 or more")


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0 (nan, inf and 0 are refused)."""
    return _checked(text, float, "a number", lambda v: math.isfinite(v) and v > 0, "a finite number above 0")


def nme_threshold(text: str) -> float:
    """argparse type: a failure threshold on NME, above 0 and at most 1 (an error as large as the normalising
    distance; 10 would count no face as failed, and the FR and AUC would say nothing)."""
    return _checked(text, float, "a number", lambda v: math.isfinite(v) and 0 < v <= 1, "above 0 and at most 1 "
                    "(0.1 is the usual: 10% of the normalising distance)")


def non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    return _checked(text, float, "a number", lambda v: math.isfinite(v) and v >= 0, "a finite number of at least 0")


def finite_float(text: str) -> float:
    """argparse type: a finite number (nan and inf are refused: a box corner, say)."""
    return _checked(text, float, "a number", math.isfinite, "a finite number")


def seed(text: str) -> int:
    """argparse type: a random seed, 0 to 2**32 - 1 (what numpy and keras.utils.set_random_seed accept: -1 used
    to end in a traceback deep in training or face rendering)."""
    return _checked(text, int, "a whole number", lambda v: 0 <= v < 2**32, "0 to 4294967295")


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity where the OS tells, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def warn_if_oversubscribed(threads: int, flag: str = "--threads") -> None:
    """One warning line when more TFLite threads are asked for than there are cores: the interpreter's threads
    then wait on each other, and a model runs hundreds of times slower (the README's "Reliability")."""
    cores = usable_cores()
    if threads > cores:
        asked = f"{flag}{threads}" if flag.endswith("=") else f"{flag} {threads}"  # `threads=8` for the library
        print(f"warning: {asked} is more than the {cores} core(s) here: the threads will wait on each "
              f"other and the model run much slower (use at most {cores}; 1 is usually fastest)", file=sys.stderr)


def refine_passes(text: str) -> int:
    """argparse type: landmark refinement passes, 0 to 5 (each one more model run per face: a huge count would
    only look like a hang)."""
    from .crop import MAX_REFINE

    return _checked(text, int, "a whole number", lambda v: 0 <= v <= MAX_REFINE, f"0 to {MAX_REFINE}")


def unit_fraction(text: str) -> float:
    """argparse type: a number from 0 to 1 (a score that is a probability: 5 or -1 would pass every face or none,
    unnoticed until the run ends)."""
    return _checked(text, float, "a number", lambda v: 0 <= v <= 1, "between 0 and 1")


def chip_size(text: str) -> int:
    """argparse type: an aligned face chip's side, 16 to 2048 pixels (`face_chips`)."""
    return _checked(text, int, "a whole number", lambda v: 16 <= v <= 2048, "16 to 2048 pixels")


def chip_padding(text: str) -> float:
    """argparse type: the room around a face in its chip, 0 to 4 (`face_chips.chip_template`)."""
    return _checked(text, float, "a number", lambda v: math.isfinite(v) and 0 <= v <= 4, "between 0 and 4")


def quality_floor(text: str) -> float:
    """argparse type: a landmark quality floor (a mean heatmap peak share), 0 to below 1."""
    return _checked(text, float, "a number", lambda v: math.isfinite(v) and 0 <= v < 1, "from 0 to below 1")


def positive_int_list(text: str) -> list[int]:
    """argparse type: comma-separated integers >= 1, e.g. thread counts `1,2`."""
    values = [positive_int(part.strip()) for part in text.split(",") if part.strip()]
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}")
    return values


PROGRESS_MAX_STEP = 1000  # with no total (a live camera), a log gets a line every this many items at most


def print_progress(done: int, total: int | None, start: float, what: str, detail: str = "") -> None:
    """`  images 30/100, 28 labelled (2.1/s)` on stderr: rewritten in place on a terminal, else a line every tenth
    of the way (every item for fewer than 20), so a long run shows it is alive and a log stays short. With no
    total (a camera), a log gets items 1-9, 10, 20, ... 90, 100, 200, ... and then every 1000th: a line per frame
    filled a service's log at the camera's frame rate."""
    import time

    rate = done / max(time.time() - start, 1e-9)
    text = (f"{what} {done}/{total}" if total else f"{what} {done}") + (f", {detail}" if detail else "")
    end = "\r" if sys.stderr.isatty() else "\n"
    step = max(1, total // 10) if total else min(PROGRESS_MAX_STEP, 10 ** (len(str(max(done, 1))) - 1))
    if sys.stderr.isatty() or done == total or done % step == 0:
        print(f"  {text} ({rate:.1f}/s)", end=end if done != total else "\n", file=sys.stderr)


def existing_path(text: str) -> str:
    """argparse type: a file or folder that exists (a mistyped model or dataset path is refused by the parser,
    before any model is loaded)."""
    import os

    if not os.path.exists(text):
        raise argparse.ArgumentTypeError(f"{text}: no such file or directory")
    return text


def model_path(text: str) -> str:
    """argparse type: a model file that exists, or a shipped model named as predict and evaluate accept it
    (`real_student.keras`, via `predictor.resolve_model_path`), so the benchmarks take the model card's names."""
    from .predictor import resolve_model_path

    return existing_path(resolve_model_path(text))


def runtime_version(text: str) -> str:
    """argparse type: a tflite-runtime version such as 2.11 or 2.11.0."""
    parts = text.split(".")
    if not 2 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"expected a version like 2.11.0, got {text!r}")
    return text


class ArgumentParser(argparse.ArgumentParser):
    """Our CLIs' parser: a bad flag gives one `error:` line and exit 2 (argparse's usage block buries it)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        spec = getattr(sys.modules.get("__main__"), "__spec__", None)
        if "prog" not in kwargs and spec is not None and spec.name.startswith("landmark_kd."):
            kwargs["prog"] = f"python -m {spec.name}"  # what was typed, not the module's file name
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def add_training_arguments(parser: argparse.ArgumentParser, defaults: TrainConfig) -> None:
    """The flags train.py and distill.py share; each maps onto a TrainConfig field."""
    from .data import FORMATS
    from .models.presets import BACKBONES  # the names only: Keras is not imported for --help
    from .schemes import SCHEMES

    g = parser.add_argument_group("data")
    g.add_argument("--data-format", default=defaults.data_format, choices=("auto",) + FORMATS,
                   help="dataset format (default: detect from the path)")
    g.add_argument("--train-data", default=None, nargs="+", help="training set(s): 300W folder, WFLW list .txt, COFW "
                   ".mat or custom .json/.csv; several are pooled (default: generated synthetic faces)")
    g.add_argument("--augmentation", default="auto", choices=("auto", "real", "synthetic"),
                   help="real: the paper's real-photo recipe (Gaussian rotation, scale, grey, gamma, blur, occlusion); "
                   "auto: real unless training on the synthetic faces")
    g.add_argument("--val-data", default=None, help="validation set, same formats (default: synthetic test set, "
                   "or 10%% held out of --train-data)")
    g.add_argument("--images-root", default=None, help="image folder for WFLW lists")
    g.add_argument("--scheme", default=defaults.scheme, help=f"landmark scheme: {', '.join(sorted(SCHEMES))} "
                   "(or 300w, wflw, cofw), or a .json layout of your own (see landmark_kd.schemes.scheme_from_json)")
    g.add_argument("--synthetic-train", type=positive_int, default=defaults.synthetic_train, help="synthetic training faces")
    g.add_argument("--synthetic-test", type=positive_int, default=defaults.synthetic_test, help="synthetic test faces")
    g.add_argument("--synthetic-root", default=defaults.synthetic_root, help="where the synthetic faces are generated")
    g.add_argument("--no-augment", action="store_true", help="train on the plain crops (no augmentation)")
    g.add_argument("--pose-balance", action="store_true", help="show turned faces more often: each face whose yaw "
                   "index (landmark_kd.metrics.yaw_index) is at least 0.3 appears twice per pass, at least 0.5 three "
                   "times; steps per epoch stay those of the set as loaded (68- and 98-point layouts)")
    g.add_argument("--normalization", default=None, choices=("inter_ocular", "inter_pupil", "bbox"),
                   help="NME normaliser for validation (default: inter-ocular where the scheme has eye corners)")
    g.add_argument("--threshold", type=nme_threshold, default=defaults.threshold, help="failure threshold for FR/AUC")
    g.add_argument("--sigma", type=positive_float, default=defaults.sigma, help="heatmap Gaussian sigma in heatmap pixels")
    g = parser.add_argument_group("model")
    g.add_argument("--preset", default=defaults.preset, choices=BACKBONES, help="backbone")
    g.add_argument("--image-size", type=positive_int, default=defaults.image_size, help="input size in pixels")
    g.add_argument("--head-dim", type=positive_int, default=defaults.head_dim, help="head channels")
    g.add_argument("--head-convs", type=positive_int, default=defaults.head_convs, help="convolutions per head branch")
    g.add_argument("--head", default="auto", choices=("auto", "light", "full"),
                   help="light: the student's depthwise head; auto: light for MobileViT-v2, full for SwinV2")
    g.add_argument("--pretrained", type=existing_path, default=None, help="Hugging Face checkpoint folder (config.json "
                   "+ model.safetensors) or .safetensors (its config beside it) to start the backbone from")
    g.add_argument("--init-from", type=model_path, default=None, help="fine-tune: start from the weights of a "
                   "trained .keras (or the run folder holding it as best.keras) of the same architecture: pass the "
                   "--preset, --image-size, --head, --head-dim and --head-convs it was trained with "
                   "(real_student.keras, a shipped model: distill.py with its default model flags, or train.py with "
                   "--preset mobilevitv2_050 --head-dim 64)")
    g = parser.add_argument_group("optimisation")
    g.add_argument("--epochs", type=positive_int, default=defaults.epochs, help="passes over the training set")
    g.add_argument("--batch-size", type=positive_int, default=defaults.batch_size, help="faces per step (the global batch "
                   "with several replicas)")
    g.add_argument("--steps-per-epoch", type=positive_int, default=None, help="default: one pass over the training set")
    g.add_argument("--lr", type=positive_float, default=defaults.learning_rate, help="AdamW peak learning rate")
    g.add_argument("--weight-decay", type=non_negative_float, default=defaults.weight_decay, help="AdamW weight decay")
    g.add_argument("--clipnorm", type=non_negative_float, default=defaults.clipnorm, help="per-variable gradient-norm clip; 0 turns "
                   "it off (with several replicas Keras clips before the all-reduce)")
    g.add_argument("--warmup-epochs", type=non_negative_float, default=defaults.warmup_epochs, help="linear warm-up, then cosine")
    g.add_argument("--star-weight", type=non_negative_float, default=defaults.star_weight, help="weight of L_STAR")
    g.add_argument("--point-weight", type=non_negative_float, default=defaults.point_weight, help="weight of AWing on point maps")
    g.add_argument("--edge-weight", type=non_negative_float, default=defaults.edge_weight, help="weight of AWing on edge maps")
    g.add_argument("--star-w", type=positive_float, default=defaults.star_w, help="STAR loss balance w")
    g.add_argument("--star-dist", default=defaults.star_dist, choices=("smoothl1", "l1", "l2"),
                   help="STAR loss distance")
    g.add_argument("--mixed-precision", default="no", choices=("no", "mixed_float16", "mixed_bfloat16"),
                   help="compute in float16 (GPUs with tensor cores) or bfloat16 (recent CPUs, TPUs) with float32 "
                   "weights and losses: faster and lighter on hardware made for it, slower elsewhere")
    g.add_argument("--xla", action="store_true", help="compile the train step with XLA")
    g.add_argument("--run-eagerly", action="store_true", help="run each train step untraced, for a debugger or "
                   "print() in a custom loss or dataset: slower per step, but no tracing at the start")
    g.add_argument("--strategy", default="auto", choices=("auto", "one_device", "mirrored", "multiworker"),
                   help="tf.distribute strategy; auto = mirrored over all local GPUs when there are several. "
                        "--batch-size is the global batch")
    g.add_argument("--seed", type=seed, default=defaults.seed, help="random seed (weights, shuffling, augmentation)")
    g = parser.add_argument_group("output")
    g.add_argument("--output", default=defaults.output, help="output folder")
    once = g.add_mutually_exclusive_group()  # resume-and-restart would delete the run it was asked to continue
    once.add_argument("--resume", action="store_true", help="require and continue an interrupted run in --output "
                   "(an interrupted run is continued automatically anyway)")
    once.add_argument("--restart", action="store_true", help="start over: remove the earlier run's files from --output (its "
                   "backup, best/last.keras, metrics, plots and logs) first; without it an interrupted run is resumed and "
                   "a finished one kept (the command refused)")
    g.add_argument("--verbose", action="store_true", help="show TensorFlow's log output")


def training_config_from_args(args: argparse.Namespace, defaults: TrainConfig) -> TrainConfig:
    """The TrainConfig the flags of `add_training_arguments` describe, on top of `defaults`."""
    return dataclasses.replace(
        defaults, data_format=args.data_format, val_data=args.val_data, augmentation=args.augmentation,
        train_data=(args.train_data[0] if len(args.train_data) == 1 else args.train_data) if args.train_data else None,
        images_root=args.images_root, scheme=args.scheme, synthetic_train=args.synthetic_train, sigma=args.sigma,
        preset=args.preset, image_size=args.image_size, head_dim=args.head_dim, pretrained=args.pretrained,
        init_from=args.init_from,
        epochs=args.epochs, batch_size=args.batch_size, steps_per_epoch=args.steps_per_epoch, learning_rate=args.lr,
        weight_decay=args.weight_decay, clipnorm=args.clipnorm or None, warmup_epochs=args.warmup_epochs, star_weight=args.star_weight,
        point_weight=args.point_weight, edge_weight=args.edge_weight, mixed_precision=args.mixed_precision,
        xla=args.xla, run_eagerly=args.run_eagerly, strategy=args.strategy, seed=args.seed, output=args.output, resume=args.resume, restart=args.restart,
        synthetic_test=args.synthetic_test, synthetic_root=args.synthetic_root, augment=not args.no_augment, pose_balance=args.pose_balance,
        normalization=args.normalization, threshold=args.threshold, head_convs=args.head_convs,
        light_head=None if args.head == "auto" else args.head == "light", star_w=args.star_w, star_dist=args.star_dist)


TRAINING_INTERRUPTED = ("interrupted: the same command resumes from the last finished epoch (--restart starts "
                        "over)")


class Terminated(KeyboardInterrupt):
    """SIGTERM (`docker stop`, a cluster's preemption, `kill`), raised where Ctrl-C would be."""


def _raise_terminated(signum, frame):
    raise Terminated()


def run(main: Callable[[list[str] | None], object], argv: list[str] | None = None,
        interrupted: str = "interrupted") -> int:
    """Run a CLI's `main(argv)`: a `UserError` (bad data, flag, file or output folder) becomes one `error:` line
    and exit 2; Ctrl-C prints `interrupted` (what to do next, for training) and exits 130, and SIGTERM does the
    same with exit 143 (it killed the process where it stood, without the message or any clean-up); any other
    exception is a bug and keeps its traceback."""
    import signal
    import threading

    from .errors import UserError

    # signal handlers can only be set from the main thread (a CLI called from another thread keeps SIGTERM's)
    handled = threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGTERM")
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if handled else None
    try:
        return main(argv)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        print(interrupted, file=sys.stderr)
        return 143 if isinstance(err, Terminated) else 130
    finally:
        if handled:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
