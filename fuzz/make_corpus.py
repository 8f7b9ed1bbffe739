#!/usr/bin/env python3
"""Writes the seed corpus for the fuzz targets: fuzz/corpus/npy and fuzz/corpus/csv.

The .npy seeds are written by numpy itself: every dtype gram reads, in both byte orders, C and
Fortran order, format versions 1.0, 2.0 and 3.0, 1-D and 2-D; then hand-made malformed files
(pickles, structured dtypes, lying or overflowing shapes, bad versions, broken headers). The CSV
seeds cover headers, comments, quoting, CRLF, every delimiter and the error cases. Files found by
libFuzzer (named by their SHA-1) live beside the seeds and are kept; rerunning this script only
rewrites the seed_* files. Usage: python3 fuzz/make_corpus.py
"""
import io
import os
import struct

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
NPY = os.path.join(HERE, "corpus", "npy")
CSV = os.path.join(HERE, "corpus", "csv")


def save(directory, name, data):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "seed_" + name), "wb") as f:
        f.write(data)


def npy_bytes(arr, version=(1, 0)):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, version=version, allow_pickle=True)
    return buf.getvalue()


def raw_npy(header, data=b"", major=1, pad=True):
    """A .npy file from a literal header text (possibly malformed) and data bytes."""
    h = header.encode("latin-1")
    lensize = 2 if major == 1 else 4
    if pad:
        total = 8 + lensize + len(h) + 1
        h += b" " * (-total % 64) + b"\n"
    length = struct.pack("<H" if lensize == 2 else "<I", len(h))
    return b"\x93NUMPY" + bytes([major, 0]) + length + h + data


def npy_seeds():
    base = np.array([[1.5, -2.0], [0.1, 1e-300], [-0.0, 3.0]])
    ints = np.array([[1, -2], [3, -4], [127, -128]])
    uints = np.array([[0, 1], [2, 200], [255, 7]])
    for bo in "<>":
        save(NPY, f"f8_{'le' if bo == '<' else 'be'}.npy", npy_bytes(base.astype(bo + "f8")))
        save(NPY, f"f4_{'le' if bo == '<' else 'be'}.npy", npy_bytes(base.astype(bo + "f4")))
        for size in (2, 4, 8):
            tag = "le" if bo == "<" else "be"
            save(NPY, f"i{size}_{tag}.npy", npy_bytes(ints.astype(f"{bo}i{size}")))
            save(NPY, f"u{size}_{tag}.npy", npy_bytes(uints.astype(f"{bo}u{size}")))
    save(NPY, "i1.npy", npy_bytes(ints.astype("i1")))
    save(NPY, "u1.npy", npy_bytes(uints.astype("u1")))
    save(NPY, "f8_fortran.npy", npy_bytes(np.asfortranarray(base)))
    save(NPY, "f4_be_fortran.npy", npy_bytes(np.asfortranarray(base.astype(">f4"))))
    save(NPY, "i2_fortran.npy", npy_bytes(np.asfortranarray(ints.astype("<i2"))))
    save(NPY, "f8_v2.npy", npy_bytes(base, (2, 0)))
    save(NPY, "f8_v3.npy", npy_bytes(base, (3, 0)))
    save(NPY, "i4_be_fortran_v2.npy", npy_bytes(np.asfortranarray(ints.astype(">i4")), (2, 0)))
    save(NPY, "u8_v3.npy", npy_bytes(uints.astype("<u8"), (3, 0)))
    save(NPY, "f8_1d.npy", npy_bytes(np.array([1.0, 2.0, 3.0])))
    save(NPY, "i8_be_1d.npy", npy_bytes(np.array([5, -6], dtype=">i8")))
    save(NPY, "f8_1x1.npy", npy_bytes(np.array([[42.0]])))

    # Refused by design.
    save(NPY, "bad_object.npy", npy_bytes(np.array([1, "a", None], dtype=object)))
    save(NPY, "bad_structured.npy", npy_bytes(np.zeros(2, dtype=[("a", "<f8"), ("b", "<i4")])))
    save(NPY, "bad_0d.npy", npy_bytes(np.array(3.0)))
    save(NPY, "bad_3d.npy", npy_bytes(np.zeros((2, 2, 2))))
    save(NPY, "bad_complex.npy", npy_bytes(np.zeros(2, dtype=complex)))
    save(NPY, "bad_empty.npy", npy_bytes(np.zeros((0, 3))))
    # Hand-made malformations.
    good = "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }"
    data = base.astype("<f8").tobytes()
    save(NPY, "bad_truncated.npy", raw_npy(good, data[:-5]))
    save(NPY, "bad_extra.npy", raw_npy(good, data + b"\0" * 8))
    save(NPY, "bad_lying_shape.npy",
         raw_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (100000, 100000), }", data))
    save(NPY, "bad_overflow_shape.npy",
         raw_npy("{'descr': '<i2', 'fortran_order': True, 'shape': (4294967296, 4294967296), }", data))
    save(NPY, "bad_version.npy", raw_npy(good, data)[:6] + b"\x04\x00" + raw_npy(good, data)[8:])
    save(NPY, "bad_header_length.npy", b"\x93NUMPY\x02\x00\xff\xff\xff\x7f{}")
    save(NPY, "bad_missing_key.npy", raw_npy("{'descr': '<f8', 'shape': (3, 2)}", data))
    save(NPY, "bad_not_tuple.npy", raw_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (6)}", data))
    save(NPY, "bad_unterminated.npy", raw_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2", data))
    save(NPY, "odd_header.npy",
         raw_npy("{ \"shape\" : ( 3L , 2L , ) ,'fortran_order':True,u'descr':'>f8' }", base.astype(">f8").T.tobytes(),
                 major=2, pad=False))


def csv_seeds():
    seeds = {
        "plain.csv": "1,2\n3,4\n",
        "header.csv": "x,y,z\n1.5,-2,3e10\n0.1,1e-300,-0\n",
        "comments.csv": "# data\nx;y\n\n1;2\n  # note\n3;4\n",
        "crlf.csv": "a,b\r\n1,2\r\n3,4\r\n",
        "lone_cr.csv": "1,2\r3,4\r",
        "tab.tsv": "a\tb\n1\t2\n3\t4\n",
        "blanks.txt": "  1   2\t3\n4 5 6\n",
        "quoted.csv": "\"a,b\",\"c\"\"d\",\"multi\nline\"\n\"1\",2,3\n",
        "single_column.csv": "sepal length\n5.1\n4.9\n",
        "nan_inf.csv": "nan,inf\n-inf,NaN\n1e999,-1e-999\n",
        "bom.csv": "\ufeffa,b\n1,2\n",
        "no_newline.csv": "1,2\n3,4",
        "bad_ragged.csv": "# c\na,b\n1,2\n\n3,4,5\n",
        "bad_text.csv": "x,y\n1,abc\n",
        "bad_empty_field.csv": "1,2,3\n4,,6\n",
        "bad_trailing_delim.csv": "1,2,\n3,4,\n",
        "bad_unterminated.csv": "a,\"b\n1,2\n",
        "bad_after_quote.csv": "\"a\"x,b\n1,2\n",
        "bad_header_only.csv": "x,y\n",
        "bad_empty.csv": "",
        "bad_comments_only.csv": "# nothing\n\n",
        "bad_comma_decimal.csv": "1,5;2,25\n3,0;4,5\n",
        "long_number.csv": "0." + "0" * 120 + "1,2\n3,4\n",
    }
    for name, text in seeds.items():
        save(CSV, name, text.encode("utf-8"))


if __name__ == "__main__":
    npy_seeds()
    csv_seeds()
