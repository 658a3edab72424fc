//! notifier: tells people about incidents, AWS Health notices, and progress while an incident is
//! open. The wording is `lifeboat_core::message`'s, the incident `lifeboat_core::incident`'s; this
//! crate reads the table, renders, and publishes each message once.

use chrono::{DateTime, Utc};
use lifeboat_core::approval::{self, Decision, Link};
use lifeboat_core::aws::evidence::EvidenceBucket;
use lifeboat_core::aws::incidents::IncidentStore;
use lifeboat_core::aws::sns::Notifier;
use lifeboat_core::aws::ssm::ApprovalKey;
use lifeboat_core::aws::{optional_env, required_env, ConfigCache, SdkConfig};
use lifeboat_core::error::LifeboatError;
use lifeboat_core::event;
use lifeboat_core::health::HealthEvent;
use lifeboat_core::incident::Incident;
use lifeboat_core::message::{self, evidence, ApprovalLinks, Message, MessageKind};
use lifeboat_core::notify::{self, NotifyRequest, PendingTask};
use serde::Serialize;
use serde_json::Value;
use tracing::info;

pub struct Deps {
    pub config: ConfigCache,
    pub store: IncidentStore,
    pub topic: Notifier,
    /// AWS Chatbot's topic, when the stack has one.
    pub chat: Option<Notifier>,
    /// The approval handler's URL and the key its links are signed with, when failovers ask.
    pub approval: Option<(String, ApprovalKey)>,
    /// Where the record of each ended failover is kept, when the stack has the bucket.
    pub evidence: Option<EvidenceBucket>,
}

impl Deps {
    /// As the template configures it (chat topic and approval links optional); the config read
    /// once now, so a broken one fails the init.
    pub async fn from_env(sdk: &SdkConfig) -> Result<Self, LifeboatError> {
        let config = ConfigCache::from_env(sdk).await?;
        let table = required_env("LIFEBOAT_INCIDENTS_TABLE")?;
        let topic = required_env("LIFEBOAT_TOPIC_ARN")?;
        let mut deps = Deps::new(config, sdk, &table, &topic, optional_env("LIFEBOAT_CHAT_TOPIC_ARN").as_deref());
        if let (Some(url), Some(secret)) =
            (optional_env("LIFEBOAT_APPROVAL_URL"), optional_env("LIFEBOAT_APPROVAL_SECRET_PARAM"))
        {
            deps = deps.with_approval(sdk, &url, &secret);
        }
        deps.evidence = optional_env("LIFEBOAT_EVIDENCE_BUCKET").map(|b| EvidenceBucket::new(sdk, &b));
        Ok(deps)
    }

    pub fn new(
        config: ConfigCache,
        sdk: &SdkConfig,
        table: &str,
        topic_arn: &str,
        chat_topic_arn: Option<&str>,
    ) -> Self {
        Deps {
            config,
            store: IncidentStore::new(sdk, table),
            topic: Notifier::new(sdk, topic_arn),
            chat: chat_topic_arn.map(|t| Notifier::new(sdk, t)),
            approval: None,
            evidence: None,
        }
    }

    /// Approval requests carry links to `url`, signed with the key in SSM parameter `secret_param`.
    pub fn with_approval(mut self, sdk: &SdkConfig, url: &str, secret_param: &str) -> Self {
        self.approval = Some((url.to_owned(), ApprovalKey::new(sdk, secret_param)));
        self
    }
}

/// What a run did; returned to the caller and logged.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Report {
    pub trigger: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignored: Option<String>,
    /// Subjects of the messages published.
    pub published: Vec<String>,
    /// Messages already published before (a redelivery, a retry): not sent again.
    pub already_published: Vec<String>,
}

pub async fn handle(deps: &Deps, payload: Value, wall_clock: DateTime<Utc>) -> Result<Report, LifeboatError> {
    let request = notify::parse(&payload)?;
    let mut report = Report::default();
    match request {
        NotifyRequest::Ignored { reason } => {
            report.trigger = "ignored".into();
            report.ignored = Some(reason);
        }
        NotifyRequest::Incident { incident_id, message, approval } => {
            report.trigger = format!("{message} {incident_id}");
            on_incident(deps, &incident_id, message, approval, wall_clock, &mut report).await?;
        }
        NotifyRequest::Health(h) => {
            report.trigger = format!("health {}", h.event_arn);
            on_health(deps, &h, wall_clock, &mut report).await?;
        }
        NotifyRequest::Progress { at } => {
            report.trigger = "progress".into();
            progress(deps, event::as_of(at, wall_clock), &mut report).await?;
        }
    }
    info!(report = %serde_json::to_string(&report).unwrap_or_default(), "notifier run");
    Ok(report)
}

async fn on_incident(
    deps: &Deps,
    id: &str,
    kind: MessageKind,
    approval: Option<PendingTask>,
    now: DateTime<Utc>,
    report: &mut Report,
) -> Result<(), LifeboatError> {
    let config = deps.config.get().await?;
    let Some(mut incident) = deps.store.get(id).await? else {
        return Err(LifeboatError::Rejected(format!("no incident {id}")));
    };
    // "resolved" after a verify that left DNS for people is "recovered, DNS pending".
    let kind = kind.as_of(incident.status);
    if !kind.fits(incident.status) {
        return Err(LifeboatError::Rejected(format!(
            "incident {id} is {}: a `{kind}` message would misstate it",
            incident.status
        )));
    }
    let db = config.database_named(&incident.database);
    let (m, key) = match approval {
        Some(task) => {
            let Some((url, key)) = &deps.approval else {
                return Err(LifeboatError::Rejected(
                    "approval-requested, but LIFEBOAT_APPROVAL_URL / LIFEBOAT_APPROVAL_SECRET_PARAM are not set".into(),
                ));
            };
            // Remember the task first: the handler answers only the task the incident waits on.
            if incident.approval_task.as_deref() != Some(task.token.as_str()) {
                deps.store.set_approval_task(id, &task.token).await?;
                incident.approval_task = Some(task.token.clone());
            }
            let key = key.get().await?;
            let expires = now + chrono::Duration::seconds(task.expires_in_seconds as i64);
            let task_ref = approval::task_ref(&task.token);
            let link = |d| Link::new(key, id, &task_ref, d, expires).url(url);
            let links = ApprovalLinks { approve: link(Decision::Approve), reject: link(Decision::Reject), expires };
            // One request per pending task: a new execution's approval is a new message.
            if kind == MessageKind::DataChecksFailed {
                (message::data_checks_failed(&incident, db, Some(&links), now), format!("{kind}@{task_ref}"))
            } else {
                (message::approval_request(&incident, db, &links, now), format!("approval-requested@{task_ref}"))
            }
        }
        None => (message::incident(kind, &incident, db, now), incident.publish_key(kind.as_str())),
    };
    let closing = matches!(kind, MessageKind::Resolved | MessageKind::Aborted | MessageKind::Failed);
    // An ended failover's record first, so the closing message can point at it.
    let (m, unkept) = match deps.evidence.as_ref().filter(|_| closing) {
        Some(bucket) => {
            let readiness = deps.store.readiness(&incident.database).await;
            let record = readiness.map(|r| evidence::of_incident(&incident, &m, r.as_ref(), now));
            bucket.keep(record, m).await
        }
        None => (m, None),
    };
    publish_once(deps, Some(&incident), &key, &m, now, report).await?;
    unkept.map_or(Ok(()), Err)
}

async fn on_health(deps: &Deps, h: &HealthEvent, now: DateTime<Utc>, report: &mut Report) -> Result<(), LifeboatError> {
    let config = deps.config.get().await?;
    let affected = match h.affected(&config) {
        Ok(dbs) => dbs,
        Err(reason) => {
            info!(%reason, "health event ignored");
            report.ignored = Some(reason);
            return Ok(());
        }
    };
    publish_once(deps, None, &h.update_key(), &message::health_notice(h, &affected), now, report).await
}

/// Every open incident quiet for 15 minutes gets one update saying what changed since the last.
async fn progress(deps: &Deps, now: DateTime<Utc>, report: &mut Report) -> Result<(), LifeboatError> {
    let config = deps.config.get().await?;
    let mut errors = Vec::new();
    for incident in deps.store.list_open().await? {
        if !incident.progress_due(now) {
            continue;
        }
        let key = incident.publish_key(MessageKind::Progress.as_str());
        let m = message::incident(MessageKind::Progress, &incident, config.database_named(&incident.database), now);
        if let Err(e) = publish_once(deps, Some(&incident), &key, &m, now, report).await {
            errors.push(e);
        }
    }
    match errors.into_iter().next() {
        None => Ok(()),
        Some(first) => Err(first),
    }
}

/// Publish `m` to the topic (and to Chatbot's) once each: a redelivery or retry doesn't send it
/// twice, a failed publish can be retried, and one abandoned mid-way is taken over. About an
/// incident, "people told" goes on its timeline (also when an earlier run published but died
/// before recording it), which restarts the 15 minutes of the progress schedule.
async fn publish_once(
    deps: &Deps,
    incident: Option<&Incident>,
    key: &str,
    m: &Message,
    now: DateTime<Utc>,
    report: &mut Report,
) -> Result<(), LifeboatError> {
    let scope = incident.map(|i| (i.id.as_str(), i.status));
    let published = deps.store.send_once(scope, key, now, deps.topic.publish(m)).await?;
    if let Some(chat) = &deps.chat {
        deps.store.send_once(scope, &format!("{key}#chat"), now, chat.publish_chat(m)).await?;
    }
    if published {
        report.published.push(m.subject.clone());
    } else {
        report.already_published.push(m.subject.clone());
    }
    if let Some(i) = incident {
        deps.store.record(&i.id, &Incident::told(key, &m.subject, now)).await?;
    }
    Ok(())
}
