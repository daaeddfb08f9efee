"""landmark_kd: accurate facial-landmark detectors small and fast enough for phones (arXiv 2404.06029), in Keras 3."""
