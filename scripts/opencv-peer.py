#!/usr/bin/env python3
"""The OpenCV peer of `linesight bench agent --peer opencv`.

What a plant's vision engineer writes with Debian's python3-opencv: decode a
JPEG frame to grey, letting libjpeg scale while decoding (IMREAD_REDUCED_*),
resize to the model's input with INTER_AREA and normalize to float32, on one
thread. The benchmark sends the same frames it preprocesses itself, one at a
time and interleaved with its own, and this script times only its own work.

Protocol (binary on stdin, one JSON line per answer on stdout):
  start:   prints {"ready": true, "opencv": "<version>", "python": "<version>"}
  request: 4-byte little-endian length, then that many bytes of JPEG
  answer:  {"ms": <decode+resize+normalize ms>, "decodeMs": <ms>, "reduce": <1|2|4|8>,
            "width": <w>, "height": <h>, "mean": <mean pixel of the resized image>}
  length 0 (or end of input) ends the script.
Exits with status 3 and a message on stderr when cv2 cannot be imported.
"""

import argparse
import json
import struct
import sys
import time

try:
    import cv2
    import numpy as np
except ImportError as err:  # the benchmark turns this into "peer skipped"
    sys.stderr.write(f"python3-opencv is not installed ({err}); apt-get install -y python3-opencv\n")
    sys.exit(3)

REDUCED = {1: cv2.IMREAD_GRAYSCALE, 2: cv2.IMREAD_REDUCED_GRAYSCALE_2,
           4: cv2.IMREAD_REDUCED_GRAYSCALE_4, 8: cv2.IMREAD_REDUCED_GRAYSCALE_8}


def reduce_factor(src_w, src_h, dst_w, dst_h, allow):
    """Largest libjpeg scale (1/2, 1/4, 1/8) that still leaves at least the target size."""
    if not allow:
        return 1
    shrink = min(src_w / dst_w, src_h / dst_h)
    for f in (8, 4, 2):
        if shrink >= f:
            return f
    return 1


def jpeg_size(data):
    """Width and height from the JPEG's SOF marker, without decoding."""
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return w, h
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (seg,) = struct.unpack(">H", data[i + 2:i + 4])
        i += 2 + seg
    raise ValueError("no SOF marker")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--width", type=int, required=True)
    parser.add_argument("--height", type=int, required=True)
    parser.add_argument("--scale", type=float, default=1 / 255)
    parser.add_argument("--mean", type=float, default=0.0)
    parser.add_argument("--std", type=float, default=1.0)
    parser.add_argument("--no-reduce", action="store_true", help="decode at full size")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    out = sys.stdout
    out.write(json.dumps({"ready": True, "opencv": cv2.__version__,
                          "python": sys.version.split()[0]}) + "\n")
    out.flush()
    stdin = sys.stdin.buffer
    size = (args.width, args.height)
    while True:
        header = stdin.read(4)
        if len(header) < 4:
            break
        (length,) = struct.unpack("<I", header)
        if length == 0:
            break
        data = stdin.read(length)
        src_w, src_h = jpeg_size(data)
        factor = reduce_factor(src_w, src_h, args.width, args.height, not args.no_reduce)
        t0 = time.perf_counter()
        grey = cv2.imdecode(np.frombuffer(data, np.uint8), REDUCED[factor])
        t1 = time.perf_counter()
        small = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
        tensor = (small.astype(np.float32) * args.scale - args.mean) / args.std
        t2 = time.perf_counter()
        out.write(json.dumps({"ms": (t2 - t0) * 1000, "decodeMs": (t1 - t0) * 1000,
                              "reduce": factor, "width": int(tensor.shape[1]),
                              "height": int(tensor.shape[0]), "mean": float(small.mean())}) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
