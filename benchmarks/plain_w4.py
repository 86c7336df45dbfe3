"""W4 floors on the same 10M x 2 float64 table: in-process, Parquet, Arrow IPC, pickle.

Modes: ``inproc`` (build + sum, no I/O), ``parquet`` (snappy), ``feather`` (Arrow IPC
file, uncompressed, read memory-mapped), ``feather_lz4``, ``pickle`` (protocol 5).
Each I/O mode times the write and the read+sum separately.
"""

import os
import pickle

import pyarrow.feather as feather
import pyarrow.parquet as pq
from common import check_w4, emit, make_table, mode_arg, peak_rss_mb, perf, state_dir, sum_a, wipe

mode = mode_arg("inproc")  # inproc | parquet | feather | feather_lz4 | pickle
d = state_dir("plain", "w4")
wipe(d)
t = perf()
tbl = make_table()
tmake = perf() - t
emit("plain", "w4", "make", tmake, mode=mode)
p = os.path.join(d, "t." + mode)
t = perf()
if mode == "inproc":
    s = sum_a(tbl)
    nbytes = 0
else:
    tw = perf()
    if mode == "parquet":
        pq.write_table(tbl, p)
    elif mode == "feather":
        feather.write_feather(tbl, p, compression="uncompressed")
    elif mode == "feather_lz4":
        feather.write_feather(tbl, p, compression="lz4")
    elif mode == "pickle":
        with open(p, "wb") as f:
            pickle.dump(tbl, f, protocol=5)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    emit("plain", "w4", "write", perf() - tw, mode=mode)
    del tbl
    tr = perf()
    if mode == "parquet":
        t2 = pq.read_table(p)
    elif mode in ("feather", "feather_lz4"):
        t2 = feather.read_table(p)  # memory-mapped when uncompressed
    else:
        with open(p, "rb") as f:
            t2 = pickle.load(f)
    s = sum_a(t2)
    emit("plain", "w4", "read_sum", perf() - tr, mode=mode)
    nbytes = os.path.getsize(p)
dt = perf() - t
check_w4(s)
emit("plain", "w4", "run", tmake + dt, mode=mode, bytes=nbytes, rss_mb=peak_rss_mb())
