"""Type stubs for the C++ extension (csrc/bindings.cpp)."""

from typing import Optional

import numpy as np
import numpy.typing as npt

def _set_sizes(
    min_chunk: int = 1048576,
    block: int = 4194304,
    read: int = 1048576,
    inflate_floor: int = 67108864,
) -> None: ...
def read_bins(
    path: str,
    threads: int = 0,
    bins: int = 0,
    marks: int = 0,
    integer_counts: bool = True,
    mark_names: list[str] = ...,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.uint8], list[str]]: ...

class BatchReader:
    def __init__(
        self,
        path: str,
        genes_per_batch: int,
        threads: int = 0,
        bins: int = 0,
        marks: int = 0,
        integer_counts: bool = True,
        mark_names: list[str] = ...,
    ) -> None: ...
    def next(
        self,
    ) -> Optional[tuple[npt.NDArray[np.float32], npt.NDArray[np.uint8], list[str]]]: ...
    @property
    def bins(self) -> int: ...
    @property
    def marks(self) -> int: ...
    @property
    def bytes_read(self) -> int: ...

def format_rows(
    counts: npt.NDArray[np.float32], labels: npt.NDArray[np.uint8], gene_ids: list[str]
) -> bytes: ...
def bin_depth(
    depth: npt.NDArray[np.floating], bin_sizes: list[int]
) -> list[npt.NDArray[np.float32]]: ...
def default_threads() -> int: ...
