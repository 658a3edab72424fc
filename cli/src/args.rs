//! What `lifeboat` takes, and the help that reads as the runbook's steps.

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Lifeboat, from a terminal: what the DR automation knows and what it is doing, and the
/// decisions a person makes during an incident.
///
/// During an incident:
///   1. lifeboat status                         what is protected, how much a recovery would lose now
///   2. lifeboat plan orders-prod               what a failover would do right now (changes nothing)
///   3. lifeboat failover orders-prod --reason "primary unreachable since 14:02" --follow
///   4. lifeboat approve <INCIDENT>             the approval, as your AWS identity (also when email is down)
///   5. lifeboat timeline <INCIDENT>            the post-mortem timeline, as Markdown
///
/// Names come from the stack's outputs (--stack) unless the LIFEBOAT_* variables name them.
/// Credentials and region: the AWS SDK's default chain, --profile and --region as the AWS CLI.
/// Exit codes: 0 ok, 1 problem found, 2 usage, 3 AWS refused or unreachable.
#[derive(Debug, Parser)]
#[command(name = "lifeboat", version, verbatim_doc_comment)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// The Lifeboat stack whose outputs name the table and state machines.
    #[arg(long, global = true, env = "LIFEBOAT_STACK", default_value = "lifeboat")]
    pub stack: String,
    /// The region of the stack to talk to: the one that runs the database's recovery.
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// A profile of your AWS config, as the AWS CLI's.
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// Machine-readable output.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a config file offline, with the functions' own parser and rules.
    Check {
        /// The policy document.
        #[arg(default_value = "lifeboat.yaml")]
        file: String,
    },
    /// Per database: RPO now against its target, the last drill and its RTO, the open incident.
    Status {
        /// Only this database.
        database: Option<String>,
    },
    /// What a failover would do right now and what it would lose: preflight, without acting.
    Plan(Target),
    /// Start a failover, as a person's request: one incident per database, the approval the
    /// config demands; you (your AWS identity) are its requester.
    Failover {
        #[command(flatten)]
        target: Target,
        /// Why, for the incident's first entry and every message.
        #[arg(long)]
        reason: String,
        /// Follow it step by step until it ends (Ctrl-C leaves it running).
        #[arg(long)]
        follow: bool,
    },
    /// Approve the failover an incident waits on, as your AWS identity. One decision per
    /// approval: the page's links and this command can't both win.
    Approve {
        incident: String,
        /// The database's name, typed to approve production without a prompt.
        #[arg(long)]
        confirm: Option<String>,
    },
    /// Reject it: nothing is changed.
    Reject {
        incident: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Incidents, newest first.
    Incidents {
        /// Only the open ones.
        #[arg(long)]
        open: bool,
    },
    /// An incident's timeline, ready to paste into a post-mortem.
    Timeline {
        incident: String,
        #[arg(long, value_enum, default_value_t = Format::Md)]
        format: Format,
    },
    /// Start a restore drill of a database now.
    Drill {
        database: String,
        /// Follow it until it ends (Ctrl-C leaves it running).
        #[arg(long)]
        follow: bool,
    },
    /// After re-protect: move the database home along the way back, planned, with the same
    /// approval as a failover. Refused unless the way back is available and caught up.
    Failback {
        database: String,
        #[arg(long)]
        reason: String,
        /// Follow it step by step until it ends (Ctrl-C leaves it running).
        #[arg(long)]
        follow: bool,
    },
    /// After a failover moved a database: build the way back, a replica of the new primary in
    /// the old primary's region with its settings. The old primary is left as it is.
    Reprotect {
        database: String,
        /// Only say what it would build.
        #[arg(long)]
        dry_run: bool,
    },
    /// Run a database's data checks now, read-only, through the stack's data validator: on its
    /// primary, or on an instance or cluster you name (a point-in-time restore, a clone).
    Validate {
        database: String,
        /// An instance or cluster identifier in the stack's region, or its RDS ARN.
        #[arg(long)]
        target: Option<String>,
    },
    /// Shell completions, for your shell's completion directory.
    Completions { shell: clap_complete::Shell },
}

#[derive(Debug, Args)]
pub struct Target {
    pub database: String,
    /// Another strategy than the configured one (a failover then always waits for approval).
    #[arg(long)]
    pub strategy: Option<String>,
    /// For `--strategy point-in-time`: the time to restore to; for `restore-latest-copy`: the
    /// newest copy taken at or before it (after ransomware, a time before the attack). RFC 3339.
    #[arg(long)]
    pub restore_time: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Md,
    Json,
}
