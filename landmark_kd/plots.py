"""Pictures a user looks at: the CED curve and landmark overlays (prediction over ground truth)."""
from __future__ import annotations

import cv2
import numpy as np

from .metrics import ced


def plot_ced(curves: dict[str, np.ndarray], path: str, threshold: float = 0.1, title: str = "CED") -> None:
    """One curve per label, from per-image NMEs. matplotlib is imported here, not with the module: the overlays
    need only OpenCV, and a board has no matplotlib (ImportError then comes from this call)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    for label, errors in curves.items():
        xs, ys = ced(errors, threshold)
        ax.plot(xs, ys, label=f"{label} (NME {np.mean(errors):.4f})")
    ax.set_xlim(0, threshold)
    ax.set_ylim(0, 1)
    ax.set_xlabel("NME")
    ax.set_ylabel("fraction of images")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def overlay_grid(images: np.ndarray, pred: np.ndarray, gt: np.ndarray | None, path: str, columns: int = 4) -> None:
    """Crops (B, H, W, 3 floats in [0, 1]) with ground truth (green) and predictions (red), saved as PNG."""
    tiles = []
    for i, image in enumerate(images):
        tile = np.ascontiguousarray((np.clip(image, 0, 1) * 255).astype(np.uint8))
        radius = max(1, tile.shape[0] // 128)
        if gt is not None:
            for x, y in gt[i][np.isfinite(gt[i]).all(-1)]:
                cv2.circle(tile, (int(round(x)), int(round(y))), radius + 1, (0, 200, 0), -1, cv2.LINE_AA)
        for x, y in pred[i][np.isfinite(pred[i]).all(-1)]:
            cv2.circle(tile, (int(round(x)), int(round(y))), radius, (230, 0, 0), -1, cv2.LINE_AA)
        tiles.append(tile)
    while len(tiles) % columns:
        tiles.append(np.full_like(tiles[0], 255))
    rows = [np.concatenate(tiles[r: r + columns], 1) for r in range(0, len(tiles), columns)]
    cv2.imwrite(path, cv2.cvtColor(np.concatenate(rows, 0), cv2.COLOR_RGB2BGR))
