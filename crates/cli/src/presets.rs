//! `hookgate presets`: the catalogue, and one preset's record with a ready `[[source]]`.

use std::process::ExitCode;

use clap::Subcommand;
use hookgate_verify::preset::{self, Preset};

use crate::{CommandResult, Failure};

#[derive(Subcommand)]
pub(crate) enum PresetsCommand {
    /// Print a preset: what it verifies, its parameters and environment variables, its
    /// answers, a ready-to-paste `[[source]]` block, and its record.
    #[command(
        after_help = "Example:\n  hookgate presets show github >> hookgate.toml   # then edit"
    )]
    Show {
        /// The preset (or an alias).
        name: String,
    },
}

pub(crate) fn run(command: Option<PresetsCommand>) -> CommandResult {
    match command {
        None => {
            list();
            Ok(ExitCode::SUCCESS)
        }
        Some(PresetsCommand::Show { name }) => show(&name),
    }
}

fn list() {
    let all = preset::catalogue();
    let width = all.iter().map(|p| p.name().len()).max().unwrap_or(0);
    outln!(
        "{} presets; `hookgate presets show NAME` prints one.",
        all.len()
    );
    let mut categories: Vec<&str> = all.iter().map(Preset::category).collect();
    categories.sort_unstable();
    categories.dedup();
    for category in categories {
        outln!();
        outln!("{category}:");
        for p in all.iter().filter(|p| p.category() == category) {
            let aliases = if p.aliases().is_empty() {
                String::new()
            } else {
                format!(" (also {})", p.aliases().join(", "))
            };
            outln!("  {:width$}  {}{aliases}", p.name(), p.title());
        }
    }
}

fn show(name: &str) -> CommandResult {
    let p = preset::find(name).ok_or_else(|| {
        Failure::config(format!(
            "unknown preset `{name}`; known: {}",
            preset::names().join(", ")
        ))
    })?;
    outln!("# {} — preset `{}`", p.title(), p.name());
    outln!("#");
    outln!("# Verifies: {}", p.summary());
    outln!("# Documentation: {}", p.docs());
    if !p.aliases().is_empty() {
        outln!("# Also called: {}", p.aliases().join(", "));
    }
    outln!("# Default path: {}", p.path());
    if !p.params().is_empty() {
        outln!("#");
        outln!("# Parameters:");
        for param in p.params() {
            let need = param.requirement();
            let env = if param.env().is_empty() {
                String::new()
            } else {
                format!("; environment {}", param.env().join(" or "))
            };
            outln!(
                "#   {} ({}, {need}{env}): {}",
                param.name(),
                param.kind().describe(),
                param.description()
            );
        }
    }
    if let Some(notes) = p.notes() {
        outln!("#");
        for line in notes.lines() {
            outln!("# {line}");
        }
    }
    outln!();
    out!("{}", p.source_block());
    outln!();
    outln!("# The record (crates/verify/presets/{}.toml):", p.name());
    for line in p.record_text().lines() {
        if line.is_empty() {
            outln!("#");
        } else {
            outln!("#   {line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
