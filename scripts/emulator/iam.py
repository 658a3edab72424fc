"""IAM: the policy simulator moto lacks (SimulatePrincipalPolicy), over a role's own policies, a
resource policy and a KMS key policy; its policy matching serves the Function URL's AWS_IAM auth."""

import json
import re

from moto.core import DEFAULT_ACCOUNT_ID

from .common import error_response


# IAM's policy simulator, which moto lacks. SimulatePrincipalPolicy (IAM API reference):
# PolicySourceArn and ActionNames are required; ResourceArns defaults to "*"; each action on each
# resource gets an EvalDecision of "allowed", "explicitDeny" or "implicitDeny"; an entity that
# doesn't exist is NoSuchEntity (404). The decision follows IAM's evaluation logic for identity
# policies: an explicit Deny that applies wins, else an Allow that applies, else implicitDeny; a
# statement applies when its Action/NotAction, Resource/NotResource and every Condition match the
# request's context (ContextEntries). A condition on a key the context lacks does not match
# (IfExists and ForAllValues excepted, as IAM documents). Operators beyond the ones below never
# match: a simulation here may say "denied" where AWS would allow, never the reverse.
IAM_NS = "https://iam.amazonaws.com/doc/2010-05-08/"


def members(form, prefix):
    out, i = [], 1
    while f"{prefix}.member.{i}" in form:
        out.append(form[f"{prefix}.member.{i}"])
        i += 1
    return out


def simulation_context(form):
    context, i = {}, 1
    while f"ContextEntries.member.{i}.ContextKeyName" in form:
        base = f"ContextEntries.member.{i}"
        context[form[f"{base}.ContextKeyName"].lower()] = members(form, f"{base}.ContextKeyValues")
        i += 1
    return context


def iam_wildcard(pattern: str, value: str, case: bool = True) -> bool:
    regex = "^" + re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".") + "$"
    return re.match(regex, value, 0 if case else re.IGNORECASE) is not None


def as_list(v):
    return v if isinstance(v, list) else [v]


CONDITION_TESTS = {
    "StringEquals": (lambda want, have: want == have, False),
    "StringNotEquals": (lambda want, have: want == have, True),
    "StringEqualsIgnoreCase": (lambda want, have: want.lower() == have.lower(), False),
    "StringLike": (iam_wildcard, False),
    "StringNotLike": (iam_wildcard, True),
    "ArnEquals": (iam_wildcard, False),
    "ArnLike": (iam_wildcard, False),
    "ArnNotEquals": (iam_wildcard, True),
    "ArnNotLike": (iam_wildcard, True),
    "Bool": (lambda want, have: want.lower() == have.lower(), False),
}


def condition_holds(operator: str, keys: dict, context: dict) -> bool:
    qualifier, _, op = operator.rpartition(":")
    for key, wanted in keys.items():
        wanted = [str(w) for w in as_list(wanted)]
        have = context.get(key.lower())
        if op == "Null":
            if (have is None) != (wanted[0].lower() == "true"):
                return False
            continue
        if_exists = op.endswith("IfExists")
        test = CONDITION_TESTS.get(op[: -len("IfExists")] if if_exists else op)
        if test is None:
            return False
        if have is None:
            if if_exists or qualifier == "ForAllValues":
                continue
            return False
        match, negated = test
        if qualifier == "ForAllValues":
            ok = all(any(match(w, h) for w in wanted) != negated for h in have)
        elif qualifier == "ForAnyValue":
            ok = any(any(match(w, h) for w in wanted) != negated for h in have)
        else:
            ok = any(match(w, have[0]) for w in wanted) != negated
        if not ok:
            return False
    return True


def statement_applies(st, action, resource, context) -> bool:
    if "Action" in st and not any(iam_wildcard(a, action, case=False) for a in as_list(st["Action"])):
        return False
    if "NotAction" in st and any(iam_wildcard(a, action, case=False) for a in as_list(st["NotAction"])):
        return False
    if "Resource" in st and not any(iam_wildcard(r, resource) for r in as_list(st["Resource"])):
        return False
    if "NotResource" in st and any(iam_wildcard(r, resource) for r in as_list(st["NotResource"])):
        return False
    return all(condition_holds(op, keys, context) for op, keys in (st.get("Condition") or {}).items())


def iam_decision(statements, action, resource, context) -> str:
    allowed = False
    for st in statements:
        if statement_applies(st, action, resource, context):
            if st.get("Effect") == "Deny":
                return "explicitDeny"
            allowed = True
    return "allowed" if allowed else "implicitDeny"


def role_statements(role_arn: str):
    """Every statement of the role's inline and attached managed policies; None if no such role."""
    from moto.iam.models import iam_backends

    backend = iam_backends[DEFAULT_ACCOUNT_ID]["global"]
    role = next((r for r in backend.roles.values() if r.arn == role_arn), None)
    if role is None:
        return None
    documents = list(role.policies.values())
    for policy in role.managed_policies.values():
        version = next((v for v in policy.versions if v.is_default), None)
        if version is not None:
            documents.append(version.document)
    statements = []
    for doc in documents:
        parsed = json.loads(doc) if isinstance(doc, str) else doc
        statements.extend(as_list(parsed.get("Statement", [])))
    return statements


def names_principal(principal, arn: str) -> bool:
    """A resource policy's Principal covers `arn`: "*", the ARN itself, or its account's root."""
    if principal == "*":
        return True
    account = arn.split(":")[4] if arn.count(":") >= 5 else ""
    named = as_list(principal.get("AWS", [])) if isinstance(principal, dict) else []
    return any(p == "*" or p == arn or p in (account, f"arn:aws:iam::{account}:root") for p in named)


def resource_policy_statements(form, source: str):
    """SimulatePrincipalPolicy's ResourcePolicy (IAM API reference: "A resource-based policy to
    include in the simulation provided as a string. Each resource in the simulation is treated as if
    it had this policy attached."): the statements whose Principal covers the caller. In one account
    an explicit Deny in either policy wins, else an Allow in either allows (IAM's evaluation logic),
    which `iam_decision` over both lists gives."""
    text = form.get("ResourcePolicy")
    if not text:
        return []
    doc = json.loads(text)
    return [st for st in as_list(doc.get("Statement", [])) if names_principal(st.get("Principal", {}), source)]


def kms_decision(identity, key_policy, source: str, action: str, resource: str, context) -> str:
    """A KMS action with a key policy as the ResourcePolicy. KMS developer guide, "Key policies in
    AWS KMS": "Unless the key policy explicitly allows it, you cannot use IAM policies to allow
    access to a KMS key. Without permission from the key policy, IAM policies that allow permissions
    have no effect." A key policy Allow for the principal itself (or "*") allows; one for the
    account (its id or `arn:aws:iam::<account>:root`, the default key policy's) only lets the
    identity policies decide; a Deny in either, for the principal or its account, wins."""
    account = source.split(":")[4] if source.count(":") >= 5 else ""

    def who(st) -> str | None:
        principal = st.get("Principal", {})
        named = ["*"] if principal == "*" else as_list(principal.get("AWS", [])) if isinstance(principal, dict) else []
        if any(p in ("*", source) for p in named):
            return "principal"
        if any(p in (account, f"arn:aws:iam::{account}:root") for p in named):
            return "account"
        return None

    applying = [(who(st), st) for st in key_policy if who(st) and statement_applies(st, action, resource, context)]
    identity_says = iam_decision(identity, action, resource, context)
    if identity_says == "explicitDeny" or any(st.get("Effect") == "Deny" for _, st in applying):
        return "explicitDeny"
    allows = {w for w, st in applying if st.get("Effect") == "Allow"}
    if "principal" in allows or ("account" in allows and identity_says == "allowed"):
        return "allowed"
    return "implicitDeny"


def simulate_principal_policy(form, start_response):
    source, actions = form.get("PolicySourceArn"), members(form, "ActionNames")
    if not source or not actions:
        return error_response(start_response, "InvalidInput", "PolicySourceArn and ActionNames are required")
    identity = role_statements(source)
    if identity is None:
        return error_response(start_response, "NoSuchEntity", f"The role with ARN {source} cannot be found.", 404)
    statements = identity + resource_policy_statements(form, source)
    context = simulation_context(form)
    key_policy = as_list(json.loads(form["ResourcePolicy"]).get("Statement", [])) if form.get("ResourcePolicy") else None

    def decide(a: str, r: str) -> str:
        if key_policy is not None and a.lower().startswith("kms:"):
            return kms_decision(identity, key_policy, source, a, r, context)
        return iam_decision(statements, a, r, context)

    results = "".join(
        f"<member><EvalActionName>{a}</EvalActionName><EvalResourceName>{r}</EvalResourceName>"
        f"<EvalDecision>{decide(a, r)}</EvalDecision>"
        "<MatchedStatements/><MissingContextValues/></member>"
        for a in actions
        for r in (members(form, "ResourceArns") or ["*"])
    )
    xml = (
        f'<SimulatePrincipalPolicyResponse xmlns="{IAM_NS}"><SimulatePrincipalPolicyResult>'
        f"<IsTruncated>false</IsTruncated><EvaluationResults>{results}</EvaluationResults>"
        "</SimulatePrincipalPolicyResult><ResponseMetadata><RequestId>lifeboat-moto</RequestId>"
        "</ResponseMetadata></SimulatePrincipalPolicyResponse>"
    )
    start_response("200 OK", [("Content-Type", "text/xml")])
    return [xml.encode()]
