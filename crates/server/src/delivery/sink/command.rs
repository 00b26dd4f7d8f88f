//! `command`: run a program with the body on stdin.

use std::path::Path;
use std::time::Duration;

use hookgate_verify::{Context, Template};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{snippet, AttemptReport, Message, Sink};
use crate::delivery::policy::Verdict;

/// `[[destination]] kind = "command"`: its own keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CommandConfig {
    /// Program and arguments (templates; the program is literal).
    command: Option<Vec<String>>,
    /// Programs running at once; default 4.
    concurrency: Option<usize>,
}

/// The keys of `kind = "command"` (besides the common ones).
pub(super) const KEYS: &[&str] = &["command", "concurrency"];

/// Validates the keys; errors name the key. A relative program path is relative to the
/// configuration file (`base`); a bare name is looked up in PATH.
pub(super) fn build(
    config: CommandConfig,
    timeout: Duration,
    base: &Path,
) -> Result<(Sink, usize), (String, String)> {
    let err = |key: &str, message: String| (key.to_owned(), message);
    let mut argv = config.command.unwrap_or_default();
    if argv.is_empty() {
        return Err(err(
            "command",
            "name the program, e.g. [\"/usr/local/bin/handle\", \"{json:/id}\"]".into(),
        ));
    }
    // The program is fixed by the operator, never chosen by request data.
    if argv[0].contains(['{', '}']) {
        return Err(err(
            "command[0]",
            "the program must be a literal path; put request data in later arguments".into(),
        ));
    }
    if argv[0].contains('/') && Path::new(&argv[0]).is_relative() {
        argv[0] = base.join(&argv[0]).display().to_string();
    }
    let argv = argv
        .iter()
        .enumerate()
        .map(|(i, a)| Template::parse(&format!("command[{i}]"), a).map_err(|e| (e.key, e.message)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((
        Sink::Command(CommandSink { argv, timeout }),
        config.concurrency.unwrap_or(4),
    ))
}

/// `command`: runs `argv` (templated like adnanh/webhook's pass-arguments, with hookgate's
/// template language over the stored request) with the body on stdin and the event's
/// metadata in `HOOKGATE_*` variables. Exit 0 is success; past the timeout the program
/// and its children (its process group) are killed.
#[derive(Debug)]
pub struct CommandSink {
    pub(crate) argv: Vec<Template>,
    pub(crate) timeout: Duration,
}

impl CommandSink {
    pub(super) async fn deliver(&self, message: &Message<'_>) -> AttemptReport {
        let (event, webhook_id, attempt) = (message.event, message.key, message.attempt);
        let fail = |error: String| AttemptReport {
            verdict: Verdict::Retry { after: None },
            status_code: None,
            response: None,
            error: Some(error),
        };
        let (path, query) = match event.path.split_once('?') {
            Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
            None => (event.path.clone(), None),
        };
        let request = hookgate_verify::Request {
            method: event.method.clone(),
            path,
            query,
            headers: event
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_bytes().to_vec()))
                .collect(),
            body: &event.body,
            peer: None,
        };
        let ctx = Context::new(&request);
        let mut argv = Vec::with_capacity(self.argv.len());
        for template in &self.argv {
            match template.render_string(&ctx) {
                Ok(arg) => argv.push(without_nul(&arg).into_owned()),
                Err(e) => {
                    return AttemptReport {
                        verdict: Verdict::Permanent,
                        status_code: None,
                        response: None,
                        error: Some(format!("argument `{template}`: {e}")),
                    }
                }
            }
        }
        let mut command = tokio::process::Command::new(&argv[0]);
        command
            .args(&argv[1..])
            .env("HOOKGATE_EVENT_ID", &*event.summary.id)
            .env("HOOKGATE_WEBHOOK_ID", webhook_id)
            .env(
                "HOOKGATE_SOURCE",
                without_nul(&event.summary.source).as_ref(),
            )
            .env(
                "HOOKGATE_TOPIC",
                without_nul(event.summary.topic.as_deref().unwrap_or("")).as_ref(),
            )
            .env(
                "HOOKGATE_TENANT",
                without_nul(event.summary.tenant.as_deref().unwrap_or("")).as_ref(),
            )
            .env(
                "HOOKGATE_DEDUPE_ID",
                without_nul(event.summary.dedupe_key.as_deref().unwrap_or("")).as_ref(),
            )
            .env(
                "HOOKGATE_RECEIVED_AT_MS",
                event.summary.received_at_ms.to_string(),
            )
            .env("HOOKGATE_ATTEMPT", attempt.to_string())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = match command.spawn() {
            Ok(c) => c,
            Err(e) => return fail(format!("cannot start `{}`: {e}", argv[0])),
        };
        let pid = child.id();
        let mut stdin = child.stdin.take();
        let mut stdout = child.stdout.take();
        let mut stderr = child.stderr.take();
        let body = event.body.clone();
        let run = async {
            if let Some(mut input) = stdin.take() {
                // A program that does not read its stdin is not an error.
                let _ = input.write_all(&body).await;
                drop(input);
            }
            let mut out = Vec::new();
            let mut err = Vec::new();
            let read_out = async {
                if let Some(s) = stdout.as_mut() {
                    let _ = s.read_to_end(&mut out).await;
                }
            };
            let read_err = async {
                if let Some(s) = stderr.as_mut() {
                    let _ = s.read_to_end(&mut err).await;
                }
            };
            tokio::join!(read_out, read_err);
            let status = child.wait().await;
            (status, out, err)
        };
        match tokio::time::timeout(self.timeout, run).await {
            Ok((Ok(status), out, err)) => {
                let mut answer = out;
                answer.extend_from_slice(&err);
                let code = status.code().map(i64::from);
                if status.success() {
                    AttemptReport {
                        verdict: Verdict::Delivered,
                        status_code: code,
                        response: Some(snippet(&answer)),
                        error: None,
                    }
                } else {
                    let mut error = match code {
                        Some(c) => format!("exit code {c}"),
                        None => "killed by a signal".to_owned(),
                    };
                    // What the program said last is usually why it failed.
                    let tail = stderr_tail(&err);
                    if !tail.is_empty() {
                        error.push_str(": ");
                        error.push_str(&tail);
                    }
                    AttemptReport {
                        verdict: Verdict::Retry { after: None },
                        status_code: code,
                        response: Some(snippet(&answer)),
                        error: Some(error),
                    }
                }
            }
            Ok((Err(e), ..)) => fail(format!("waiting for `{}`: {e}", argv[0])),
            Err(_) => {
                if let Some(pid) = pid {
                    // The whole group: a shell script's children die with it.
                    let _ = nix::sys::signal::killpg(
                        nix::unistd::Pid::from_raw(pid as i32),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                fail(format!(
                    "timed out after {} and was killed",
                    humantime::format_duration(self.timeout)
                ))
            }
        }
    }
}

/// `text` with NUL characters replaced by U+FFFD: a program's arguments and environment
/// cannot hold a NUL, and a provider's topic (or any templated value) must not make a
/// command delivery impossible.
fn without_nul(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains('\0') {
        text.replace('\0', "\u{fffd}").into()
    } else {
        text.into()
    }
}

/// Bytes of a failed command's stderr kept in its attempt's error.
const STDERR_TAIL: usize = 512;

/// The last [`STDERR_TAIL`] bytes of `stderr`, on one line: trimmed, line breaks as ` | `,
/// other control characters dropped.
fn stderr_tail(stderr: &[u8]) -> String {
    let start = stderr.len().saturating_sub(STDERR_TAIL);
    let text = String::from_utf8_lossy(&stderr[start..]);
    let lines: Vec<String> = text
        .lines()
        .map(|l| l.chars().filter(|c| !c.is_control()).collect::<String>())
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect();
    let joined = lines.join(" | ");
    if start > 0 {
        format!("…{joined}")
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build_with(argv: &[&str]) -> Result<(Sink, usize), (String, String)> {
        build(
            CommandConfig {
                command: Some(argv.iter().map(|a| (*a).to_owned()).collect()),
                concurrency: None,
            },
            Duration::from_secs(1),
            Path::new("/etc/hookgate"),
        )
    }

    #[test]
    fn the_program_is_literal_and_relative_to_the_configuration() {
        assert_eq!(build_with(&[]).err().map(|e| e.0), Some("command".into()));
        assert_eq!(
            build_with(&["{json:/prog}"]).err().map(|e| e.0),
            Some("command[0]".into())
        );
        let (sink, concurrency) = build_with(&["bin/handle", "--", "{json:/id}"]).unwrap();
        assert_eq!(concurrency, 4);
        let Sink::Command(command) = sink else {
            panic!("a command sink")
        };
        assert_eq!(command.argv[0].to_string(), "/etc/hookgate/bin/handle");
        // A bare name is looked up in PATH, as given.
        let Sink::Command(command) = build_with(&["python3"]).unwrap().0 else {
            panic!()
        };
        assert_eq!(command.argv[0].to_string(), "python3");
    }

    #[test]
    fn a_nul_becomes_a_replacement_character_and_stderr_is_one_line() {
        assert_eq!(without_nul("a\0b"), "a\u{fffd}b");
        assert_eq!(stderr_tail(b"first\nsecond\n\n"), "first | second");
        let long = vec![b'x'; STDERR_TAIL + 10];
        assert!(stderr_tail(&long).starts_with('…'));
    }
}
