//! Names a broker sink publishes to (a NATS subject, a Redis stream, an AMQP exchange and
//! routing key, an MQTT topic), templated from the event: `{source}`, `{topic}`,
//! `{event_id}`, `{tenant}`. An absent topic or tenant is `_`.
//!
//! The literal text is the operator's and is checked once, when the configuration is
//! built; the values are the provider's, so each broker passes them through its own
//! `clean`, which replaces what its names cannot hold (a NATS wildcard, an MQTT `#`).

use hookgate_store::EventRecord;

/// What an absent topic or tenant becomes.
pub const ABSENT: &str = "_";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Source,
    Topic,
    EventId,
    Tenant,
}

/// A parsed name template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameTemplate {
    parts: Vec<Part>,
}

impl NameTemplate {
    /// Parses `text`; an unknown or unclosed placeholder is an error.
    pub fn parse(text: &str) -> Result<NameTemplate, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 1..];
            let close = after.find('}').ok_or_else(|| {
                format!(
                    "`{{` at byte {} is not closed",
                    text.len() - rest.len() + open
                )
            })?;
            parts.push(match &after[..close] {
                "source" => Part::Source,
                "topic" => Part::Topic,
                "event_id" => Part::EventId,
                "tenant" => Part::Tenant,
                other => {
                    return Err(format!(
                        "unknown placeholder `{{{other}}}`; use {{source}}, {{topic}}, {{event_id}} or {{tenant}}"
                    ))
                }
            });
            rest = &after[close + 1..];
        }
        if rest.contains('}') {
            return Err("`}` without `{`".into());
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(NameTemplate { parts })
    }

    /// The literal text (what the operator wrote outside placeholders).
    pub fn literals(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Text(t) => Some(t.as_str()),
            _ => None,
        })
    }

    /// The text before the first placeholder: the whole name when there is none.
    pub fn prefix(&self) -> (&str, bool) {
        let constant = self.parts.iter().all(|p| matches!(p, Part::Text(_)));
        match self.parts.first() {
            Some(Part::Text(t)) => (t, constant),
            _ => ("", constant),
        }
    }

    /// The name for `event`, each value passed through `clean`.
    pub fn render(&self, event: &EventRecord, clean: impl Fn(&str) -> String) -> String {
        let summary = &event.summary;
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Source => out.push_str(&clean(&summary.source)),
                Part::Topic => out.push_str(&clean(summary.topic.as_deref().unwrap_or(ABSENT))),
                Part::EventId => out.push_str(&clean(&summary.id)),
                Part::Tenant => out.push_str(&clean(summary.tenant.as_deref().unwrap_or(ABSENT))),
            }
        }
        out
    }
}

/// Every character `bad` says no to (and every control character) becomes `_`; an empty
/// value becomes `_`.
pub fn replace(value: &str, bad: impl Fn(char) -> bool) -> String {
    if value.is_empty() {
        return ABSENT.into();
    }
    value
        .chars()
        .map(|c| if c.is_control() || bad(c) { '_' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(topic: Option<&str>) -> EventRecord {
        let mut record = hookgate_store::testing::event("github", None, 2).to_record();
        record.summary.topic = topic.map(str::to_owned);
        record
    }

    #[test]
    fn placeholders_are_the_events_values() {
        let t = NameTemplate::parse("webhooks.{source}.{topic}.{event_id}.{tenant}").unwrap();
        let pushed = event(Some("push"));
        assert_eq!(
            t.render(&pushed, |v| v.to_owned()),
            format!("webhooks.github.push.{}._", &*pushed.summary.id)
        );
        let untitled = event(None);
        assert_eq!(
            t.render(&untitled, |v| replace(v, |c| c == '.')),
            format!("webhooks.github._.{}._", &*untitled.summary.id)
        );
        assert_eq!(t.prefix(), ("webhooks.", false));
        assert_eq!(
            NameTemplate::parse("fixed").unwrap().prefix(),
            ("fixed", true)
        );
    }

    #[test]
    fn a_broker_cleans_the_values_not_the_literal_text() {
        let t = NameTemplate::parse("a/{topic}").unwrap();
        let mqtt = |v: &str| replace(v, |c| c == '+' || c == '#');
        assert_eq!(t.render(&event(Some("x+y/#\n")), mqtt), "a/x_y/__");
        assert_eq!(t.render(&event(Some("")), mqtt), "a/_");
    }

    #[test]
    fn mistakes_are_named() {
        assert!(NameTemplate::parse("a.{topic")
            .unwrap_err()
            .contains("not closed"));
        assert!(NameTemplate::parse("a.{json:/x}")
            .unwrap_err()
            .contains("unknown placeholder `{json:/x}`"));
        assert!(NameTemplate::parse("a}").unwrap_err().contains("without"));
    }
}
