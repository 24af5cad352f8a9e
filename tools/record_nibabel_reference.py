"""Records nibabel's view of the real scans into the committed test fixture.

Run by hand after the setup fetched the scans:
    .venv/bin/python tools/record_nibabel_reference.py data/real Tests/EngineTests/Fixtures/nibabel_reference.json
"""
import hashlib
import json
import os
import sys

from nibabel_summary import summary

SCANS = ["ch2.nii.gz", "ch2bet.nii.gz", "mean_reg2mean.nii.gz", "facemask.nii.gz"]


def main(folder, out):
    reference = {}
    for name in SCANS:
        path = os.path.join(folder, name)
        entry = summary(path)
        with open(path, "rb") as f:
            entry["file_sha256"] = hashlib.sha256(f.read()).hexdigest()
        reference[name] = entry
    with open(out, "w") as f:
        json.dump(reference, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {out} ({len(reference)} scans)")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
