"""A video's per-frame landmarks, written to disk as they come instead of held in memory.

A camera left running kept every frame's faces in a list (about 90 KB a frame with two faces, so gigabytes an
hour) and wrote nothing until it stopped: a board ran out of memory, and a power cut lost the whole run. Each
frame is now one line of a JSON Lines file, flushed as it is written; `landmarks.json` copies the lines in at
the end, line by line (`write_results_json`), and the file is then removed.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator

from .outputs import atomic_write, json_safe


class FrameLog:
    """Per-frame records ({"frame": i, "faces": [...]}) appended to `path`, one JSON line each. Reads back as a
    sequence (len, iteration, indexing) for callers of `predict_video` / `predict_camera`; `faces` counts the
    faces of all frames. `transform` rewrites each record before it is written (e.g. `--points 51`)."""

    def __init__(self, path: str, transform: Callable[[dict], dict] | None = None):
        self.path, self.transform = path, transform
        self.count, self.faces = 0, 0
        self._handle = open(path, "w", encoding="utf-8")

    def append(self, record: dict) -> None:
        if self.transform is not None:
            record = self.transform(record)
        self._handle.write(json.dumps(json_safe(record), allow_nan=False) + "\n")
        self._handle.flush()  # a killed run keeps every frame it finished
        self.count += 1
        self.faces += len(record.get("faces", []))

    def close(self) -> None:
        if not self._handle.closed:
            self._handle.close()

    def lines(self) -> Iterator[str]:
        """The records as their JSON text, without reading the whole file at once."""
        if not self._handle.closed:
            self._handle.flush()
        with open(self.path, encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    yield line.rstrip("\n")

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[dict]:
        return (json.loads(line) for line in self.lines())

    def __getitem__(self, index):
        return list(self)[index]

    def remove(self) -> None:
        """Delete the file once its records are in landmarks.json."""
        self.close()
        try:
            os.remove(self.path)
        except OSError:
            pass


def _dumps(value) -> str:
    return json.dumps(json_safe(value), allow_nan=False)


def write_results_json(path: str, header: dict, results: dict) -> None:
    """`{**header, "results": results}` as JSON at `path`, atomically, with every `FrameLog` in an entry written
    as the list of its records, copied line by line: the same document `atomic_json` writes, in bounded memory."""
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as out:
            out.write("{")
            for key, value in header.items():
                out.write(f"\n  {_dumps(key)}: {_dumps(value)},")
            out.write('\n  "results": {')
            for i, (name, entry) in enumerate(results.items()):
                out.write(("," if i else "") + f"\n    {_dumps(name)}: {{")
                for j, (key, value) in enumerate(entry.items()):
                    out.write(("," if j else "") + f"\n      {_dumps(key)}: ")
                    if isinstance(value, FrameLog):
                        out.write("[")
                        for k, line in enumerate(value.lines()):
                            out.write(("," if k else "") + "\n        " + line)
                        out.write("\n      ]")
                    else:
                        out.write(_dumps(value))
                out.write("\n    }")
            out.write("\n  }\n}\n")

    atomic_write(path, write)
