"""SSM Parameter Store: a value's size against its tier."""

import io
import json

from .common import CREDENTIAL_REGION, caller_account, peek_body


# SSM PutParameter, Value: "Standard parameters have a value limit of 4 KB. Advanced parameters
# have a value limit of 8 KB." Tier: "if you don't specify a tier in a request, Parameter Store
# assigns the tier based on the current Parameter Store default tier configuration" ("The default
# tier when you begin using Parameter Store is the standard-parameter tier"); "Intelligent-Tiering:
# With this option, Parameter Store evaluates each request to determine if the parameter is
# standard or advanced", advanced when "The content size of the parameter is more than 4 KB" or
# "The parameter uses a parameter policy"; and "you can't revert an advanced parameter to a
# standard parameter". AWS refuses with ValidationException "Standard tier parameters support a
# maximum parameter value of 4096 characters. To create a larger parameter value, upgrade the
# parameter to use the advanced-parameter tier. ..." (terraform-aws-github-runner#3815), and past
# 8 KB "The specified parameter value is too large. Advanced-tier parameters support a maximum
# parameter value of 8192 characters." moto stores any size, and keeps "Intelligent-Tiering" as
# the tier where AWS answers the one it chose. Not encoded: an explicit Standard over an Advanced
# parameter (refused by AWS, with an error no reference names).
# Bytes or characters: the reference says KB, AWS's message says characters, and nothing public
# settles it for text beyond ASCII (reports measure ASCII: 4096 accepted, 4097 refused). Here UTF-8
# bytes, the stricter reading: what fits here fits on AWS either way.
SSM_TIER_LIMITS = {"Standard": 4096, "Advanced": 8192}


SSM_TOO_LARGE = {
    "Standard": "Standard tier parameters support a maximum parameter value of 4096 characters. To create a larger "
    "parameter value, upgrade the parameter to use the advanced-parameter tier. For more information, see "
    "https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-advanced-parameters.html",
    "Advanced": "The specified parameter value is too large. Advanced-tier parameters support a maximum parameter value of 8192 characters.",
}


def ssm_value_refused(environ) -> str | None:
    """Why PutParameter's value is too large for its tier, or None; an Intelligent-Tiering request
    is handed to moto with the tier AWS would pick. Leaves the body readable for moto."""
    from moto.ssm.models import ssm_backends

    raw = peek_body(environ)
    try:
        request = json.loads(raw or b"{}")
    except ValueError:
        return None
    if not isinstance(request, dict) or not isinstance(request.get("Value"), str) or not request.get("Name"):
        return None
    region = (CREDENTIAL_REGION.search(environ.get("HTTP_AUTHORIZATION", "")) or [None, "us-east-1"])[1]
    backend = ssm_backends[caller_account(environ)][region]
    # Not backend._parameters[name]: that would create the entry (a defaultdict) or load AWS's public ones.
    versions = dict.get(backend._parameters, backend._parameters.normalize_name(request["Name"])) or []
    if versions and not request.get("Overwrite"):
        return None  # moto answers ParameterAlreadyExists
    previous = versions[-1].tier if versions else None
    size = len(request["Value"].encode("utf-8"))
    tier = request.get("Tier") or previous or getattr(backend, "default_parameter_tier", "Standard")
    if tier == "Intelligent-Tiering":
        needs_advanced = size > SSM_TIER_LIMITS["Standard"] or previous == "Advanced" or request.get("Policies") not in (None, "", "[]")
        tier = "Advanced" if needs_advanced else "Standard"
        request["Tier"] = tier
        raw = json.dumps(request).encode()
        environ["CONTENT_LENGTH"] = str(len(raw))
        environ["wsgi.input"] = io.BytesIO(raw)
    if tier in SSM_TIER_LIMITS and size > SSM_TIER_LIMITS[tier]:
        return SSM_TOO_LARGE[tier]
    return None
