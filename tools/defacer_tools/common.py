"""What every converter shares: its error, atomic writes and file hashes."""

from __future__ import annotations

import hashlib
import os
import tempfile


class ConversionError(Exception):
    """A conversion or check that cannot go on; its message names the file and the reason."""


def fail(message: str) -> "None":
    raise ConversionError(message)


def atomic_write(path: str, data: bytes) -> None:
    """Writes `data` to a temporary file beside `path`, syncs it and renames it into place
    (mode 0666 less the umask), so that `path` is either the old file or the whole new one."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(path) or ".")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_names_and_shapes(tensors: dict, expected: dict, label: str, source: str) -> None:
    """`tensors` (name -> array or anything with a shape) hold exactly the names of `expected`
    (name -> shape), each with its shape; `source` names what the expected ones come from."""
    missing = [k for k in expected if k not in tensors]
    extra = [k for k in tensors if k not in expected]
    if missing or extra:
        fail("%s: the tensors do not match %s (missing %s; unexpected %s)" % (label, source, missing[:5], extra[:5]))
    for k, shape in expected.items():
        if tuple(tensors[k].shape) != tuple(shape):
            fail("%s: tensor %s has shape %s, %s has %s" % (label, k, list(tensors[k].shape), source, list(shape)))
