#!/usr/bin/env python3
"""Runs two `defacer` binaries on the same scans and checks that their outputs are the same.

Usage:
    tools/bench/compare-deface.py OLD_BINARY NEW_BINARY OUT_FOLDER SCAN [SCAN ...]
        [--rounds N] [--models FOLDER] [--gzip-may-differ]

For every scan, each round runs `OLD deface` then `NEW deface` (alternated, so both see the
same load), writing the defaced image, the face mask, the QC picture and the report into
OUT_FOLDER/old/<scan>/ and OUT_FOLDER/new/<scan>/ under the same file names. It then checks,
for the last round:
  - the defaced image and the face mask: the gzip files byte for byte (unless --gzip-may-differ:
    a changed gzip writer), and their decompressed bytes (NIfTI header and voxels) byte for byte;
  - the QC picture (PNG) byte for byte;
  - the report (JSON) equal in everything but its times (`stages`, `totalSeconds`).
It prints one line per scan ("same" or what differs), then each stage's time (wall, from the
reports: median over rounds) for old and new with their ratio, and each process's CPU time
(user + system, from the kernel's accounting of the child). Exit status 1 if any output differs.
Standard library only.
"""
import argparse
import gzip
import json
import os
import resource
import statistics
import subprocess
import sys
import time


def run(binary, scan, folder, models):
    os.makedirs(folder, exist_ok=True)
    stem = os.path.basename(scan).split(".nii")[0]
    out = {k: os.path.join(folder, stem + suffix) for k, suffix in
           [("defaced", "_defaced.nii.gz"), ("mask", "_face_mask.nii.gz"), ("qc", "_qc.png"), ("report", "_deface.json")]}
    for path in out.values():
        if os.path.exists(path):
            os.unlink(path)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    args = [binary, "deface", scan, "--output", out["defaced"], "--mask", out["mask"], "--qc", out["qc"],
            "--report", out["report"]]
    if models:
        args += ["--models", models]
    proc = subprocess.run(args, capture_output=True, text=True)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        sys.exit(f"{binary} failed on {scan}: {proc.stderr.strip()[-400:]}")
    with open(out["report"]) as f:
        report = json.load(f)
    return out, report, wall, cpu


def read(path, unzip=False):
    with (gzip.open(path, "rb") if unzip else open(path, "rb")) as f:
        return f.read()


def differences(old, new, gzip_may_differ=False):
    found = []
    for key in ("defaced", "mask"):
        if read(old[key], unzip=True) != read(new[key], unzip=True):
            found.append(f"{key}: decompressed header or voxels differ")
        elif read(old[key]) != read(new[key]) and not gzip_may_differ:
            found.append(f"{key}: same voxels, gzip bytes differ")
    if read(old["qc"]) != read(new["qc"]):
        found.append("QC picture differs")
    reports = []
    for path in (old["report"], new["report"]):
        with open(path) as f:
            r = json.load(f)
        r.pop("stages", None)
        r.pop("totalSeconds", None)
        if gzip_may_differ:
            # the gzip files' own hashes; their decompressed bytes are compared above
            r["outputSHA256"] = {k: v for k, v in r.get("outputSHA256", {}).items() if not k.endswith(".gz")}
        reports.append(r)
    if reports[0] != reports[1]:
        keys = sorted(k for k in set(reports[0]) | set(reports[1]) if reports[0].get(k) != reports[1].get(k))
        found.append("report differs in " + ", ".join(keys))
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("out")
    parser.add_argument("scans", nargs="+")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--models")
    parser.add_argument("--gzip-may-differ", action="store_true",
                        help="the gzip files may differ in their compressed bytes (another gzip writer); "
                             "their decompressed header and voxels must still be the same")
    a = parser.parse_args()
    failed = False
    for scan in a.scans:
        name = os.path.basename(scan).split(".nii")[0]
        stages = {"old": {}, "new": {}}
        totals = {"old": [], "new": []}
        outs = {}
        for _ in range(a.rounds):
            for which, binary in (("old", a.old), ("new", a.new)):
                out, report, wall, cpu = run(binary, scan, os.path.join(a.out, which, name), a.models)
                outs[which] = out
                for s in report["stages"]:
                    stages[which].setdefault(s["name"], []).append(s["seconds"])
                totals[which].append((wall, cpu))
        diff = differences(outs["old"], outs["new"], a.gzip_may_differ)
        failed = failed or bool(diff)
        print(f"{name}: " + ("same (defaced image, face mask, QC picture, report but times)" if not diff else "; ".join(diff)))
        for stage, old_times in stages["old"].items():
            o, n = statistics.median(old_times), statistics.median(stages["new"].get(stage, [float("nan")]))
            print(f"    {stage:32s} old {o:7.3f} s  new {n:7.3f} s  ratio {o / n if n else float('nan'):5.2f}x")
        for label, index in (("process wall", 0), ("process CPU", 1)):
            o = statistics.median(t[index] for t in totals["old"])
            n = statistics.median(t[index] for t in totals["new"])
            print(f"    {label:32s} old {o:7.3f} s  new {n:7.3f} s  ratio {o / n:5.2f}x")
        sys.stdout.flush()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
