"""Organizations: reads from a member account."""

from .common import caller_account


# Organizations reads from a member account. API reference (ListPoliciesForTarget, ListParents,
# DescribePolicy): "This operation can be called only from the organization's management account or
# by a member account that is a delegated administrator." moto answers a member from its own empty
# backend (AccountNotFoundException, whatever the delegation): here a member that is a delegated
# administrator (RegisterDelegatedAdministrator, standing in for the management account's
# resource-based delegation policy, which moto lacks) is answered by its organization, and any
# other member is refused (AccessDeniedException).
ORGANIZATIONS_DELEGATED_READS = {"DescribePolicy", "ListParents", "ListPoliciesForTarget"}


def organizations_member_read_refused(environ) -> str | None:
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    service, _, op = target.partition(".")
    if service != "AWSOrganizationsV20161128" or op not in ORGANIZATIONS_DELEGATED_READS:
        return None
    from moto.organizations.models import organizations_backends

    account = caller_account(environ)
    member_of = organizations_backends.master_accounts.get(account)
    if member_of is None or member_of[0] == account:
        return None
    management, partition = member_of
    if any(a.account.id == account for a in organizations_backends[management][partition].admins):
        environ["HTTP_X_MOTO_ACCOUNT_ID"] = management
        return None
    return f"account {account} is neither the management account nor a delegated administrator"
