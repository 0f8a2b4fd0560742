"""The EBS direct APIs (``ebs.*.amazonaws.com``: ListChangedBlocks, ListSnapshotBlocks, ...),
which moto does not implement: it answers them with an HTML 500, which the AWS SDKs retry
for several seconds, and which no AWS endpoint ever sends for a well-formed request.
"""

from __future__ import annotations

import json
import re
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication

from .common import patch

EBS_DIRECT_DENIED = (
    "User is not authorized to perform: ebs:ListChangedBlocks "
    "(the emulator has no EBS direct API)"
)

_EBS_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/ebs/aws4_request")


@patch
def patch_ebs_direct_api_denied() -> None:
    """AWS answers a caller whose IAM policy does not allow ``ebs:ListChangedBlocks`` with 403
    ``AccessDeniedException`` (JSON ``{"Message", "Reason"}``, not retried): see
    https://docs.aws.amazon.com/ebs/latest/APIReference/API_ListChangedBlocks.html#API_ListChangedBlocks_Errors.
    Every EBS direct API call (recognised by its signature's credential scope, service
    ``ebs``) gets that answer here, as for a role that may not read snapshot blocks: snaprelay
    then sizes an incremental copy as ``unknown`` (SPEC 6.5), as it must against such a
    role, and at once."""
    original = DomainDispatcherApplication.__call__

    def call(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
        if _EBS_SCOPE.search(environ.get("HTTP_AUTHORIZATION", "")):
            body = json.dumps({"Message": EBS_DIRECT_DENIED, "Reason": "UNAUTHORIZED_ACCOUNT"}).encode()
            start_response(
                "403 Forbidden",
                [
                    ("Content-Type", "application/json"),
                    ("x-amzn-ErrorType", "AccessDeniedException"),
                    ("Content-Length", str(len(body))),
                ],
            )
            return [body]
        return original(self, environ, start_response)

    DomainDispatcherApplication.__call__ = call
