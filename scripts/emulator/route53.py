"""Route 53's control plane: the change rules moto skips, and changes PENDING before INSYNC."""

import re
from datetime import datetime, timezone

from moto.core import DEFAULT_ACCOUNT_ID

from .common import Refused


RRSET_PATH = re.compile(r"^/2013-04-01/hostedzone/([^/]+)/rrset/?$")


CHANGE_PATH = re.compile(r"^/2013-04-01/change/([^/]+)$")
HEALTH_CHECK_PATH = re.compile(r"^/2013-04-01/healthcheck/([^/]+)$")


def route53_change_rules(zone_id: str, body: str):
    """ChangeResourceRecordSets: a CNAME at the zone apex is refused ("creating a CNAME record for
    the zone apex isn't supported", InvalidChangeBatch), and ChangeBatch Comment is at most 256
    characters (InvalidInput). moto takes both."""
    from moto.route53.models import route53_backends

    comment = re.search(r"<Comment>(.*?)</Comment>", body, re.S)
    if comment and len(comment.group(1)) > 256:
        raise Refused("InvalidInput", "Comment is longer than 256 characters")
    zone = route53_backends[DEFAULT_ACCOUNT_ID]["aws"].zones.get(zone_id)
    if zone is None:
        return
    apex = zone.name.rstrip(".").lower()
    # A batch is applied as one: what it DELETEs no longer conflicts with what it creates.
    changes = re.findall(r"<Change>\s*<Action>(.*?)</Action>\s*<ResourceRecordSet>(.*?)</ResourceRecordSet>", body, re.S)
    deleted = set()
    for action, rrset in changes:
        name = re.search(r"<Name>(.*?)</Name>", rrset, re.S)
        kind = re.search(r"<Type>(.*?)</Type>", rrset, re.S)
        if action == "DELETE" and name and kind:
            deleted.add((name.group(1).rstrip(".").lower(), kind.group(1)))
    for action, rrset in changes:
        if action == "DELETE":
            continue
        name = re.search(r"<Name>(.*?)</Name>", rrset, re.S)
        kind = re.search(r"<Type>(.*?)</Type>", rrset, re.S)
        if name and kind and kind.group(1) == "CNAME" and name.group(1).rstrip(".").lower() == apex:
            raise Refused(
                "InvalidChangeBatch", f"RRSet of type CNAME with DNS name {name.group(1)} is not permitted at apex in zone {apex}"
            )
        cname_conflicts(zone, rrset, name, kind, deleted)


def cname_conflicts(zone, rrset, name, kind, deleted=frozenset()):
    """A CNAME can't share its name with any other record ("RRSet of type CNAME with DNS name x.
    is not permitted as it conflicts with other records with the same DNS name", aws-sdk-java#1996),
    and a simple record can't join records with a routing policy ("cannot be created as a
    non-weighted set exists with the same name and type", external-dns#1411): Route 53 answers
    InvalidChangeBatch, UPSERT or not. moto replaces or adds anything."""
    if not (name and kind and kind.group(1) == "CNAME"):
        return
    wanted = name.group(1).rstrip(".").lower()
    routed = re.search(r"<SetIdentifier>", rrset) is not None
    for existing in zone.rrsets:
        if existing.name.rstrip(".").lower() != wanted or (wanted, existing.type) in deleted:
            continue
        if existing.type != "CNAME":
            raise Refused(
                "InvalidChangeBatch",
                f"RRSet of type CNAME with DNS name {name.group(1)} is not permitted as it conflicts with other records with the same DNS name",
            )
        if bool(existing.set_identifier) != routed:
            raise Refused(
                "InvalidChangeBatch",
                f"RRSet with DNS name {name.group(1)}, type CNAME cannot be created as a record set with a routing policy exists with the same name and type",
            )


def pending_change_xml(change_id: str) -> bytes:
    """A GetChange answer saying PENDING: Route 53 reports every change PENDING until all its name
    servers have it; moto says INSYNC at once, so waiting would never be exercised."""
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<GetChangeResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><ChangeInfo>'
        f"<Id>/change/{change_id}</Id><Status>PENDING</Status><SubmittedAt>{now}</SubmittedAt>"
        "</ChangeInfo></GetChangeResponse>"
    ).encode()
