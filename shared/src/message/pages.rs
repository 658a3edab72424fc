//! The approval handler's pages. A GET shows what will happen and a form; only the form's POST
//! decides, because mail scanners and chat unfurlers fetch every link they see.

use chrono::{DateTime, Utc};

use crate::approval::{Decision, Link};
use crate::config::Tier;
use crate::incident::Incident;

/// HTML-escape text put into a page. Five replacements; a template engine would be a dependency
/// for three small pages.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\"><title>{t}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}}\
         label{{display:block;margin:.8rem 0}}input{{font-size:1rem;padding:.3rem;width:100%}}\
         button{{font-size:1rem;padding:.5rem 1.2rem}}</style></head>\
         <body><h1>{t}</h1>\n{body}\n</body></html>\n",
        t = escape(title)
    )
}

/// Whether approving asks the approver to type the database name: production always.
pub fn must_type_database(i: &Incident) -> bool {
    i.tier == Tier::Production
}

/// The page a link opens: the incident, the plan, the expected loss, and the form that decides.
pub fn approval_form(i: &Incident, link: &Link, now: DateTime<Utc>) -> String {
    let mut body = format!(
        "<p><strong>{sev} {kind} incident for {db}</strong> ({tier}), started {start}.</p>\n",
        sev = i.severity,
        kind = i.kind,
        db = escape(&i.database),
        tier = i.tier.as_str(),
        start = i.started.format("%Y-%m-%d %H:%M UTC"),
    );
    if let Some(e) = i.timeline.first() {
        body.push_str(&format!("<p>What happened: {}</p>\n", escape(&e.what)));
    }
    if let Some(p) = i.timeline.iter().rev().find(|e| e.key == "step:preflight") {
        body.push_str(&format!("<p id=\"plan\">What will happen: {}.</p>\n", escape(&p.what)));
        if let Some(d) = &p.details {
            body.push_str(&format!("<p id=\"loss\">{}</p>\n", escape(d)));
        }
    }
    let minutes = (link.expires - now).num_minutes().max(0);
    body.push_str(&format!(
        "<p>This link expires at {} (in {minutes} min). Nothing changes until you submit the form.</p>\n",
        link.expires.format("%H:%M UTC")
    ));
    body.push_str("<form method=\"post\">\n");
    for (name, value) in form_urlencoded::parse(link.query().as_bytes()) {
        body.push_str(&format!("<input type=\"hidden\" name=\"{}\" value=\"{}\">\n", escape(&name), escape(&value)));
    }
    if link.decision == Decision::Approve && must_type_database(i) {
        body.push_str(&format!(
            "<label>Type the database name (<code>{}</code>) to confirm <input name=\"database\" autocomplete=\"off\" required></label>\n",
            escape(&i.database)
        ));
    }
    body.push_str("<label>Your name <input name=\"approver\" autocomplete=\"name\" required></label>\n");
    let button = match link.decision {
        Decision::Approve => "Approve the failover",
        Decision::Reject => "Reject the failover",
    };
    body.push_str(&format!("<button type=\"submit\" id=\"decide\">{button}</button>\n</form>"));
    page(&format!("{button}: {}", i.database), &body)
}

/// The page after a decision, a refusal, or any answer that changes nothing.
pub fn outcome(title: &str, text: &str) -> String {
    page(title, &format!("<p id=\"outcome\">{}</p>", escape(text)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::approval::task_ref;
    use crate::config::Config;
    use crate::incident::{Entry, Kind};
    use chrono::TimeZone;

    #[test]
    fn the_form_carries_the_link_and_asks_for_the_database_name_in_production() {
        let config = Config::from_yaml(include_str!("../../../examples/lifeboat.yaml")).unwrap();
        let at = Utc.with_ymd_and_hms(2026, 11, 25, 19, 42, 0).unwrap();
        let mut i = Incident::declare(&config.databases[0], Kind::Outage, at, "CloudWatch", "alarm <b>down</b>", "a");
        i.apply(
            Entry::new(at, "failover-steps", "promote replica orders-replica", "step:preflight")
                .with_details("Expected data loss: 4s"),
            None,
        );
        let link = Link::new(b"k", &i.id, &task_ref("t"), Decision::Approve, at + chrono::Duration::minutes(30));
        let html = approval_form(&i, &link, at);
        assert!(html.contains("alarm &lt;b&gt;down&lt;/b&gt;"), "text is escaped");
        assert!(html.contains("name=\"database\"") && html.contains("Expected data loss: 4s"));
        assert!(html.contains(&format!("value=\"{}\"", link.signature)));
        assert!(html.contains("<form method=\"post\">"));
        let reject = Link { decision: Decision::Reject, ..link };
        assert!(!approval_form(&i, &reject, at).contains("name=\"database\""));
    }
}
