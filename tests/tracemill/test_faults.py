"""Which faults a retry can fix, on the exceptions s3fs, the store and the standard library really raise."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, NoCredentialsError
from s3fs.errors import translate_boto_error

from tracemill.faults import is_transient_fault
from tracemill.preflight import PreflightError
from tracemill.store import ShardNotFoundError, StoreUnavailableError


def _s3(code: str, status: int) -> BaseException:
    """What s3fs raises for an S3 error answer with ``code``."""
    error = ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Put"
    )
    return translate_boto_error(error)


def _from_store(cause: BaseException) -> StoreUnavailableError:
    """The store's error around ``cause``, as its guard raises it."""
    try:
        raise StoreUnavailableError("s3://lake/x", f"storage unavailable: {cause}") from cause
    except StoreUnavailableError as exc:
        return exc


@pytest.mark.parametrize(
    ("fault", "transient"),
    [
        (_from_store(_s3("SlowDown", 503)), True),
        (_from_store(_s3("InternalError", 500)), True),
        (_from_store(ConnectionResetError(104, "Connection reset by peer")), True),
        (StoreUnavailableError("s3://lake/x", "storage unavailable: connection reset"), True),
        (ConnectionRefusedError(111, "Connection refused"), True),
        (TimeoutError("timed out"), True),
        (_from_store(_s3("AccessDenied", 403)), False),
        (_from_store(_s3("InvalidAccessKeyId", 403)), False),
        (_from_store(_s3("SignatureDoesNotMatch", 403)), False),
        (_from_store(_s3("InvalidBucketName", 400)), False),
        (_from_store(NoCredentialsError()), False),
        (_from_store(NotADirectoryError(20, "Not a directory")), False),
        (_from_store(FileExistsError(17, "File exists")), False),
        (FileNotFoundError(2, "No such file or directory"), False),
        (PermissionError(13, "Permission denied"), False),
        (OSError("Repo id must be in the form 'repo_name' or 'namespace/repo_name': '/models/nope'."), False),
        (ShardNotFoundError("s3://lake/x", "does not exist"), False),
        (PreflightError(["teacher model folder /models/nope does not exist"]), False),
        (ValueError("row 3 field 'answer': bad value"), False),
    ],
    ids=repr,
)
def test_retry_only_what_may_pass(fault, transient):
    assert is_transient_fault(fault) is transient
