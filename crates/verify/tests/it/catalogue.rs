//! `docs/presets.md` and the README's preset table are generated from the preset records
//! and their vectors; this test fails when either is stale. `UPDATE_GOLDEN=1` rewrites them.

use std::path::PathBuf;

use hookgate_verify::preset::{self, ParamKind, Preset};
use hookgate_verify::{Reply, Responses};

use crate::vectors;

/// Providers asked for whose scheme could not be confirmed from their documentation or an
/// official SDK, or that need an engine feature not built yet: listed, not guessed.
const NOT_YET: &[(&str, &str)] = &[
    (
        "Recurly",
        "its documentation gives `recurly-signature: <timestamp>,<signature>,…` (HMAC-SHA256 hex), but the exact signed message could not be read in full, and its verifiers are in the Ruby, Go and Java clients, not in a PyPI or npm package the vector script can run",
    ),
    (
        "Front",
        "application webhooks sign `{x-front-request-timestamp}:{body}` (base64 HMAC-SHA256 with the app secret), but the answer its `x-front-challenge` validation request expects is not documented in what could be read",
    ),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn reply_text(reply: &Reply) -> String {
    if reply.body.is_empty() {
        format!("{} (empty)", reply.status)
    } else {
        format!(
            "{} `{}`",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        )
    }
}

/// The answers that differ from hookgate's defaults.
fn answers(p: &Preset) -> String {
    let given = p.responses();
    let default = Responses::default();
    let mut parts = Vec::new();
    let add = |parts: &mut Vec<String>, label: &str, a: &Reply, b: &Reply| {
        if a != b {
            parts.push(format!("{label} {}", reply_text(a)));
        }
    };
    add(&mut parts, "stored", &given.accepted, &default.accepted);
    if given.missing_credential == given.rejected && given.rejected != default.rejected {
        parts.push(format!("every refusal {}", reply_text(&given.rejected)));
    } else {
        add(
            &mut parts,
            "missing credential",
            &given.missing_credential,
            &default.missing_credential,
        );
        add(&mut parts, "refused", &given.rejected, &default.rejected);
    }
    add(
        &mut parts,
        "payload",
        &given.invalid_payload,
        &default.invalid_payload,
    );
    add(
        &mut parts,
        "malformed",
        &given.malformed_body,
        &default.malformed_body,
    );
    add(
        &mut parts,
        "store down",
        &given.unavailable,
        &default.unavailable,
    );
    add(&mut parts, "internal", &given.internal, &default.internal);
    if parts.is_empty() {
        "defaults".into()
    } else {
        parts.join("; ")
    }
}

fn environment(p: &'static Preset) -> String {
    let mut vars = Vec::new();
    for param in p.params() {
        if let Some(first) = param.env().first() {
            let note = if first.ends_with("_FILE") {
                " (a file)"
            } else {
                ""
            };
            vars.push(format!("`{first}`{note}"));
        }
    }
    if p.params().iter().any(|q| q.kind() == ParamKind::Issuers) {
        for (name, var) in p.environment() {
            if name == "audience" {
                vars.push(format!("`{var}`"));
            }
        }
    }
    vars.join(", ")
}

fn escape(text: &str) -> String {
    text.replace('|', "\\|")
}

fn presets_md() -> String {
    let all = preset::catalogue();
    let mut out = String::new();
    out.push_str("# Preset catalogue\n\n");
    out.push_str("<!-- Generated from crates/verify/presets/*.toml and crates/verify/tests/vectors/*.json by `UPDATE_GOLDEN=1 cargo test -p hookgate-verify --test it catalogue`; do not edit. -->\n\n");
    out.push_str(&format!(
        "{} presets. Each is one record, `crates/verify/presets/<name>.toml`, written over the generic checks; each is proven by a test vector made by the provider's official SDK (pinned in `scripts/vectors/requirements.txt`, made by `scripts/vectors/run.sh`) or quoted from the provider's documentation, plus the negatives derived from it (a tampered body, a wrong secret, a stale timestamp where the scheme has one).\n\n",
        all.len()
    ));
    out.push_str("`hookgate presets` lists them; `hookgate presets show NAME` prints one with a ready-to-paste `[[source]]` block. Parameters follow one convention: the signing secret is `secret` (`secrets = [...]` for rotation), a public key `public_key` (or `public_key_file`), anything else the provider's own term; environment variables are `<PROVIDER>_WEBHOOK_SECRET` unless the provider documents one.\n\n");
    out.push_str("| preset | provider | category | verifies |\n|---|---|---|---|\n");
    for p in all {
        out.push_str(&format!(
            "| [`{}`](#{}) | {} | {} | {} |\n",
            p.name(),
            p.name(),
            escape(p.title()),
            p.category(),
            escape(p.summary())
        ));
    }
    for p in all {
        out.push_str(&format!("\n## {}\n\n", p.name()));
        out.push_str(&format!(
            "**{}** — {}\n\n",
            escape(p.title()),
            escape(p.summary())
        ));
        let docs = if p.docs().starts_with("https://") {
            format!("<{}>", p.docs())
        } else {
            p.docs().to_owned()
        };
        out.push_str(&format!("- Documentation: {docs}\n"));
        if !p.aliases().is_empty() {
            out.push_str(&format!("- Also called: `{}`\n", p.aliases().join("`, `")));
        }
        out.push_str(&format!("- Default path: `{}`", p.path()));
        if p.methods() != ["POST"] {
            out.push_str(&format!(", methods {}", p.methods().join(", ")));
        }
        out.push('\n');
        for param in p.params() {
            let need = param.requirement();
            let env = if param.env().is_empty() {
                String::new()
            } else {
                format!("; `{}`", param.env().join("` or `"))
            };
            out.push_str(&format!(
                "- `{}` ({}, {need}{env}): {}\n",
                param.name(),
                param.kind().describe(),
                escape(param.description())
            ));
        }
        let read: Vec<String> = p
            .fields()
            .iter()
            .filter(|(_, from)| !from.is_empty())
            .map(|(name, from)| format!("{name} `{}`", from.join("` or `")))
            .collect();
        if !read.is_empty() {
            out.push_str(&format!("- Reads: {}\n", read.join(", ")));
        }
        out.push_str(&format!("- Answers: {}\n", answers(p)));
        let file = vectors::load(p.name());
        if !file.handshakes.is_empty() {
            let list: Vec<String> = file
                .handshakes
                .iter()
                .map(|h| {
                    let reply = if h.reply.is_empty() {
                        format!("{} (empty)", h.status)
                    } else {
                        format!("{} `{}`", h.status, escape(&h.reply))
                    };
                    format!("`{}` ({} → {reply})", h.name, h.method)
                })
                .collect();
            out.push_str(&format!(
                "- Handshakes (answered, never stored): {}\n",
                list.join("; ")
            ));
        }
        let reference = if file.reference.starts_with("https://") {
            format!("<{}>", file.reference)
        } else {
            file.reference.clone()
        };
        out.push_str(&format!(
            "- Proof: {} ({} case{}; {reference})\n",
            file.made_by,
            file.cases.len(),
            if file.cases.len() == 1 { "" } else { "s" }
        ));
        if let Some(notes) = p.notes() {
            out.push_str(&format!("\n{}\n", notes.trim()));
        }
    }
    if !NOT_YET.is_empty() {
        out.push_str("\n## Not yet supported\n\n");
        for (provider, why) in NOT_YET {
            out.push_str(&format!("- **{provider}**: {why}\n"));
        }
    }
    out
}

const BEGIN: &str = "<!-- presets:begin (generated; see docs/presets.md) -->\n";
const END: &str = "<!-- presets:end -->\n";

fn readme_table() -> String {
    let mut out = String::from("| preset | path | environment |\n|---|---|---|\n");
    for p in preset::catalogue() {
        let mut names = format!("`{}`", p.name());
        for alias in p.aliases() {
            names.push_str(&format!(" / `{alias}`"));
        }
        out.push_str(&format!(
            "| {names} | `{}` | {} |\n",
            p.path(),
            environment(p)
        ));
    }
    out
}

fn check_or_update(path: &PathBuf, wanted: &str) {
    let current = std::fs::read_to_string(path).unwrap_or_default();
    if current == wanted {
        return;
    }
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(path, wanted).unwrap();
        return;
    }
    panic!(
        "{} is stale: run `UPDATE_GOLDEN=1 cargo test -p hookgate-verify --test it catalogue`",
        path.display()
    );
}

#[test]
fn the_catalogue_document_is_current() {
    check_or_update(&root().join("docs/presets.md"), &presets_md());
}

#[test]
fn the_readme_table_is_current() {
    let path = root().join("README.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let start = text
        .find(BEGIN)
        .expect("README.md has the presets:begin marker")
        + BEGIN.len();
    let end = text
        .find(END)
        .expect("README.md has the presets:end marker");
    let wanted = format!("{}{}{}", &text[..start], readme_table(), &text[end..]);
    check_or_update(&path, &wanted);
}
