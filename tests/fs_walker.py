"""A program that walks every file it can read and reports what looks like benchmark answers.

Run inside the sandbox (its source is sent as the program) or on the host as a control. It reads
one JSON object on stdin: ``roots`` (where to start), ``skip`` (pseudo filesystems to list but
not read: /proc, /sys, /dev), ``needles`` (hex-encoded byte strings: canonical-solution lines,
dataset markers), ``name_pattern`` (a regex matched against every path), ``probe_paths``
(paths whose visibility is reported), ``elf_head_only`` (trees whose ELF binaries are read
only in part). It reads every other regular file to the end, in chunks,
and searches each needle in its bytes: for gzip/bzip2/xz streams in the decompressed bytes,
for zip archives (wheels, eggs, jars) in the raw bytes and in every member's. It prints one JSON object: counts of files,
directories and bytes read, the paths whose name matches, ``(needle, path)`` content hits,
which probe paths exist, and the paths it could not read.

Standard library only.
"""

import bz2
import gzip
import json
import lzma
import os
import re
import stat
import sys
import zipfile

CHUNK = 1 << 20


def _search(stream, needles, overlap, label, hits):
    """Scan a binary stream chunk by chunk; record (needle, label) for each needle found."""
    tail = b""
    found = set()
    total = 0
    while True:
        chunk = stream.read(CHUNK)
        if not chunk:
            break
        total += len(chunk)
        window = tail + chunk
        for n in needles:
            if n not in found and n in window:
                found.add(n)
                hits.append([n.hex(), label])
        tail = window[-overlap:] if overlap else b""
    return total


def _scan_file(path, needles, overlap, hits, elf_head_only):
    """Read one file to the end (and its decompressed content, if compressed); an ELF binary
    only its first chunk when `elf_head_only`."""
    with open(path, "rb") as f:
        magic = f.read(6)
        f.seek(0)
        if elf_head_only and magic[:4] == b"\x7fELF":
            return len(f.read(CHUNK))
        if magic[:2] != b"\x1f\x8b" and magic[:3] != b"BZh" and magic[:6] != b"\xfd7zXZ\x00":
            total = _search(f, needles, overlap, path, hits)
        else:  # compressed bytes hold no plain text: read them, search the decompressed stream
            total = sum(len(b) for b in iter(lambda: f.read(CHUNK), b""))
    opener = None
    if magic[:2] == b"\x1f\x8b":
        opener = gzip.open
    elif magic[:3] == b"BZh":
        opener = bz2.open
    elif magic[:6] == b"\xfd7zXZ\x00":
        opener = lzma.open
    if opener is not None:
        try:
            with opener(path, "rb") as z:
                total += _search(z, needles, overlap, path + "!decompressed", hits)
        except (OSError, EOFError, ValueError, lzma.LZMAError):
            pass
    elif magic[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(path) as zf:
                for info in zf.infolist():
                    with zf.open(info) as member:
                        total += _search(member, needles, overlap, path + "!" + info.filename, hits)
        except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError):
            pass
    return total


def walk(job):
    """Walk `job["roots"]` and return the report (see the module docstring)."""
    needles = [bytes.fromhex(n) for n in job["needles"]]
    overlap = max((len(n) for n in needles), default=1) - 1
    name_re = re.compile(job["name_pattern"])
    skip = tuple(job.get("skip", ()))
    elf_head = tuple(job.get("elf_head_only", ()))
    report = {"files": 0, "dirs": 0, "bytes": 0, "name_hits": [], "content_hits": [], "unreadable": [],
              "visible": {p: os.path.lexists(p) for p in job.get("probe_paths", ())}, "read": []}
    want_read = set(job.get("report_read", ()))
    seen = set()
    stack = list(job["roots"])
    while stack:
        d = stack.pop()
        try:
            st = os.stat(d)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in seen:
            continue
        seen.add((st.st_dev, st.st_ino))
        report["dirs"] += 1
        try:
            entries = list(os.scandir(d))
        except OSError as exc:
            report["unreadable"].append([d, exc.errno])
            continue
        for entry in entries:
            path = entry.path
            if name_re.search(path):
                report["name_hits"].append(path)
            try:
                st = os.stat(path)  # follows symlinks: what a program would open
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                if not path.startswith(skip):
                    stack.append(path)
            elif stat.S_ISREG(st.st_mode) and not path.startswith(skip):
                if (st.st_dev, st.st_ino) in seen:
                    continue
                seen.add((st.st_dev, st.st_ino))
                try:
                    report["bytes"] += _scan_file(path, needles, overlap, report["content_hits"],
                                                  path.startswith(elf_head))
                    report["files"] += 1
                    if path in want_read:
                        report["read"].append(path)
                except OSError as exc:
                    report["unreadable"].append([path, exc.errno])
    return report


if __name__ == "__main__":
    print(json.dumps(walk(json.loads(sys.stdin.read()))))
