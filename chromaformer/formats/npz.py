""".npz written as it streams: arrays of unknown final length, bounded memory."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np


class NpzStream:
    """Writes arrays of unknown final length to an .npz with bounded memory: chunks go
    to raw temporary files, then into the zip with an .npy header."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.files: dict[str, Any] = {}
        self.meta: dict[str, tuple[np.dtype, tuple[int, ...], int]] = {}

    def add(self, name: str, arr: np.ndarray) -> None:
        if name not in self.files:
            self.files[name] = open(self.folder / f"{name}.raw", "wb")
            self.meta[name] = (arr.dtype, arr.shape[1:], 0)
        dtype, tail, n = self.meta[name]
        self.files[name].write(np.ascontiguousarray(arr, dtype=dtype).tobytes())
        self.meta[name] = (dtype, tail, n + len(arr))

    def write(self, target: Path, extra: dict[str, np.ndarray]) -> None:
        for f in self.files.values():
            f.close()
        with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
            for name, (dtype, tail, n) in self.meta.items():
                with (
                    zf.open(f"{name}.npy", "w", force_zip64=True) as out,
                    open(self.folder / f"{name}.raw", "rb") as raw,
                ):
                    np.lib.format.write_array_header_2_0(
                        out,
                        {
                            "descr": np.lib.format.dtype_to_descr(dtype),
                            "fortran_order": False,
                            "shape": (n, *tail),
                        },
                    )
                    while chunk := raw.read(1 << 24):
                        out.write(chunk)
            for name, arr in extra.items():
                with zf.open(f"{name}.npy", "w", force_zip64=True) as out:
                    np.lib.format.write_array(out, np.asarray(arr), allow_pickle=False)
