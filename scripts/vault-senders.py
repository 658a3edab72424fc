"""Which region sends each vault its copies, for scripts/deploy.sh (before anything is deployed):
    python scripts/vault-senders.py lifeboat.yaml REGION [REGION...]
REGIONs are the regions Lifeboat is deployed to (LIFEBOAT_REGIONS). One stack (one region) sends
every database's copies from its region; stacks in several regions (Recovers=own) each send those
of the databases whose source is in their region. A vault stack (infra/vault.yaml) answers one
region, its SourceRegion: the source's copier there cleans up after the vault's answer. So a vault
that would receive from several regions is refused (exit 1), naming the databases; otherwise each
vault is printed with the SourceRegion its stack must have (exit 0). Usage errors exit 2."""

import sys

import yaml


def senders(config: dict, regions: list) -> dict:
    """(vault account, vault region) -> {sending region: [database names]}."""
    out = {}
    top = config.get("vault")
    for db in config.get("databases") or []:
        vault = db.get("vault") or top
        if not vault:
            continue
        source_region = str(db["source"]).split(":")[3]
        sender = regions[0] if len(regions) == 1 else source_region
        key = (str(vault["account"]), vault["region"])
        out.setdefault(key, {}).setdefault(sender, []).append(db["name"])
    return out


def main(argv: list) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1]) as f:
        config = yaml.safe_load(f) or {}
    regions = argv[2:]
    status = 0
    for (account, region), by_sender in sorted(senders(config, regions).items()):
        if len(by_sender) > 1:
            said = "; ".join(f"{r}: {', '.join(names)}" for r, names in sorted(by_sender.items()))
            print(
                f"deploy: vault account {account} in {region} would receive copies from the stacks in "
                f"{len(by_sender)} regions ({said}), but a vault stack answers one SourceRegion, and the "
                "others' transit copies would never be cleaned up: give each source region's databases "
                "their own vault (vault.region or vault.account), or run them from one stack",
                file=sys.stderr,
            )
            status = 1
        else:
            (sender,) = by_sender
            print(f"deploy: vault account {account} in {region}: its stack's SourceRegion is {sender}")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
