"""Which faults a retry can fix: the shard tasks' retry condition, the preflight and the build's advice.

Storage or a network that is down, busy or failing may work a moment later. A path that is not
there or is under a file, refused rights or credentials, a bad request, configuration and data
errors fail the same way every time: retrying them only hides the cause behind minutes of waiting.
"""

from __future__ import annotations

import errno

from tracemill.store import StoreUnavailableError

_PERMANENT_TYPES = (FileNotFoundError, NotADirectoryError, IsADirectoryError, FileExistsError, PermissionError)
_PERMANENT_ERRNOS = {
    errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.EACCES, errno.EPERM, errno.EROFS,
    errno.EINVAL, errno.ENAMETOOLONG, errno.ENOSYS, errno.ENOSPC,
}  # fmt: skip


def is_transient_fault(exc: BaseException) -> bool:
    """True for a fault a retry may not meet again: storage or network down, busy or failing.

    A store error is transient unless its cause is permanent (a store path under a file, refused
    credentials, a missing bucket). Other errors are transient only as operating-system errors
    of the network or the disk; a bare ``OSError`` without an errno is a library's message about
    its input (transformers raises one for a model folder or Hub id it cannot resolve).
    """
    if isinstance(exc, StoreUnavailableError):
        return not _is_permanent(exc.__cause__)
    if not isinstance(exc, OSError) or _is_permanent(exc):  # ConnectionError and TimeoutError are OSErrors
        return False
    return type(exc) is not OSError or exc.errno is not None


def is_credentials_fault(exc: BaseException | None) -> bool:
    """Credentials missing, refused or lacking rights: s3fs turns S3's 403 codes into PermissionError."""
    if isinstance(exc, PermissionError) or (isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM)):
        return True
    try:
        from botocore.exceptions import NoCredentialsError, PartialCredentialsError
    except ImportError:  # no S3 support installed, so no S3 credentials either
        return False
    return isinstance(exc, NoCredentialsError | PartialCredentialsError)


def _is_permanent(exc: BaseException | None) -> bool:
    return (
        isinstance(exc, _PERMANENT_TYPES)
        or (isinstance(exc, OSError) and exc.errno in _PERMANENT_ERRNOS)
        or is_credentials_fault(exc)
    )
