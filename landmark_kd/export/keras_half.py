"""Store a `.keras` model's float32 weights as float16, to ship a large model at half the size.

A SwinV2-tiny teacher is 112 MB in float32, over what a git host takes in one file. Keras casts each stored
array to its variable's dtype when it loads the weights, so the rewritten archive loads with the stock
`keras.saving.load_model` (safe mode on) as the same float32 model, its weights rounded to float16 once:
nothing that reads it needs to know. Only the file changes; the model computes in float32 as before.

    python -m landmark_kd.export.keras_half runs/teacher/best.keras landmark_kd/pretrained/teacher.keras
"""

from __future__ import annotations

import io
import os
import sys
import zipfile

import numpy as np

if __package__ in (None, ""):  # run by its path (python landmark_kd/export/keras_half.py), as benchmark.py is
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    __package__ = "landmark_kd.export"

from ..errors import MissingFileError, ModelFileError, OutputError  # noqa: E402
from ..outputs import atomic_write  # noqa: E402

WEIGHTS_ENTRY = "model.weights.h5"


def _halve_h5(data: bytes) -> tuple[bytes, int]:
    """The h5 weights file with each float32 dataset rewritten as float16; also how many were rewritten."""
    import h5py

    source, target = io.BytesIO(data), io.BytesIO()
    halved = 0
    with h5py.File(source, "r") as src, h5py.File(target, "w") as dst:
        def copy(group_in, group_out) -> None:
            nonlocal halved
            group_out.attrs.update(group_in.attrs)
            for name, item in group_in.items():
                if isinstance(item, h5py.Group):
                    copy(item, group_out.create_group(name))
                    continue
                value = item[()]
                if isinstance(value, np.ndarray) and value.dtype == np.float32:
                    value, halved = value.astype(np.float16), halved + 1
                out = group_out.create_dataset(name, data=value)
                out.attrs.update(item.attrs)

        copy(src, dst)
    return target.getvalue(), halved


def _same_file(source: str, target: str) -> bool:
    """Whether `target` names `source` (also through a link or another spelling of the path)."""
    if os.path.exists(target):
        return os.path.samefile(source, target)  # hard links too
    return os.path.realpath(source) == os.path.realpath(target)


def save_with_half_weights(source: str, target: str) -> int:
    """Write `target`: the `.keras` archive `source` with its float32 weights stored as float16.

    Returns the number of weight arrays rewritten. Raises MissingFileError or ModelFileError for a `source` that
    is missing or not a `.keras` archive, OutputError for a `target` that is `source` itself (the rewrite is
    lossy, so in place it would destroy the float32 weights); a failed write leaves any earlier `target` as it was."""
    if os.path.isdir(source):  # "not found" would send the user looking for a path that is there
        raise MissingFileError(f"{source}: a folder, not a model file (name the .keras file in it)")
    if not os.path.isfile(source):
        raise MissingFileError(f"{source}: model file not found")
    if not zipfile.is_zipfile(source):
        raise ModelFileError(f"{source}: not a .keras archive (a zip file with {WEIGHTS_ENTRY})")
    if _same_file(source, target):
        raise OutputError(f"{target}: the same file as the source model; rewriting it in place would lose its "
                          "float32 weights (float16 is lossy): name another output")
    with zipfile.ZipFile(source) as archive:
        if WEIGHTS_ENTRY not in archive.namelist():
            raise ModelFileError(f"{source}: a zip file without {WEIGHTS_ENTRY}, not a .keras archive")
        try:  # a damaged archive: a member that fails its CRC, or weights h5py cannot open
            entries = {name: archive.read(name) for name in archive.namelist()}
            entries[WEIGHTS_ENTRY], halved = _halve_h5(entries[WEIGHTS_ENTRY])
        except (OSError, zipfile.BadZipFile) as err:
            raise ModelFileError(f"{source}: a damaged .keras archive ({WEIGHTS_ENTRY} cannot be read: {err})") from None
    os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)

    def write(path: str) -> None:
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
            for name, data in entries.items():
                archive.writestr(name, data)

    atomic_write(target, write)
    return halved


def main(argv: list[str] | None = None) -> int:
    """`python -m landmark_kd.export.keras_half`; exit 2 with one `error:` line for a missing or bad model file."""
    from ..cli import run

    return run(_main, sys.argv[1:] if argv is None else argv)


def _main(argv: list[str]) -> int:
    from ..cli import ArgumentParser

    parser = ArgumentParser(
        prog="python -m landmark_kd.export.keras_half",
        description="Rewrite a .keras model with its float32 weights stored as float16 (half the file); it loads "
                    "with landmark_kd.models.load_model as the same float32 model.")
    parser.add_argument("source", help="the .keras model to read (a run folder: its best.keras; a shipped model's "
                        "file name, e.g. real_teacher.keras, names the shipped file)")
    parser.add_argument("target", help="where to write the half-size .keras model")
    parser.add_argument("--check", action="store_true",
                        help="load both and print the largest output difference on random inputs")
    args = parser.parse_args(argv)
    if not args.target.endswith(".keras"):  # Keras picks the file format by its extension: x.h5 would not load
        parser.error(f"target {args.target}: the file name must end in .keras")
    from ..predictor import resolve_model_path

    args.source = resolve_model_path(args.source)  # as every other CLI reads a model argument
    size = os.path.getsize(args.source) if os.path.isfile(args.source) else 0
    halved = save_with_half_weights(args.source, args.target)
    mb = size / 1e6, os.path.getsize(args.target) / 1e6
    print(f"{args.target}: {halved} weight arrays stored as float16, {mb[0]:.1f} MB -> {mb[1]:.1f} MB")
    if args.check:
        from landmark_kd.quiet import quiet_tensorflow

        quiet_tensorflow()
        from landmark_kd.models.landmark_model import load_model

        full, half = load_model(args.source), load_model(args.target)
        shape = (2, *full.input_shape[1:])
        x = np.random.default_rng(0).uniform(0, 1, shape).astype("float32")
        a, b = full(x, training=False), half(x, training=False)  # landmark models answer with a dict of maps
        print(f"on {len(x)} random {shape[1]}x{shape[2]} images:")
        for key in a:
            unit = " px (input pixels)" if key == "landmarks" else " (map values)"
            print(f"  {key}: largest difference {np.abs(np.asarray(a[key]) - np.asarray(b[key])).max():.2e}{unit}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
