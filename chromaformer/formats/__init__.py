"""Every file format, read and written in one place, torch-free: the bin CSV (C++ reader
and writer), text input (gzip, UTF-8, binary sniffing), gene annotations (BED/GTF) and
interactions, signal tracks (bigWig/bedGraph), and per-gene genome-browser tracks out."""

from .annotation import Gene, GeneSet, read_genes, read_interactions
from .bincsv import Bins, BinStream, iter_bins, read_bins, write_bins
from .signal import open_track, write_bigwig

__all__ = [
    "Bins",
    "BinStream",
    "Gene",
    "GeneSet",
    "iter_bins",
    "open_track",
    "read_bins",
    "read_genes",
    "read_interactions",
    "write_bigwig",
    "write_bins",
]
