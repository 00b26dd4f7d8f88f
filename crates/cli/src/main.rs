//! The `hookgate` command.
#![forbid(unsafe_code)]

/// glibc's malloc took about a sixth of the gateway's CPU under load (arena locking and
/// consolidation: request buffers are allocated on one thread and freed on another);
/// mimalloc's thread-local free lists avoid both. Measured with `hookgate-bench`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `println!` for command output: a closed pipe (`hookgate events list | head`) ends the
/// command quietly instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($arg)*) {
            $crate::output_failed(e)
        }
    }};
}

/// `print!` for command output; see [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = write!(std::io::stdout(), $($arg)*) {
            $crate::output_failed(e)
        }
    }};
}

pub(crate) fn output_failed(e: std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: cannot write the output: {e}");
    std::process::exit(i32::from(EXIT_RUNTIME));
}

mod events;
mod keygen;
mod oidc_issuer;
mod presets;
mod raw_request;
mod send;
mod serve;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};

/// Exit codes: 0 success; 1 runtime failure (network, store, I/O); 2 invalid configuration
/// or usage; 3 the request was refused (`verify`: verification failed; `send`: the receiver
/// answered non-2xx).
pub(crate) const EXIT_RUNTIME: u8 = 1;
pub(crate) const EXIT_CONFIG: u8 = 2;
pub(crate) const EXIT_REFUSED: u8 = 3;

#[derive(Parser)]
#[command(
    name = "hookgate",
    version,
    about = "A self-hosted gateway for incoming webhooks: verify, deduplicate, store durably, acknowledge.",
    after_help = "Exit codes: 0 success, 1 runtime failure, 2 invalid configuration or usage, 3 refused (verify failed; send got a non-2xx answer)."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log format on stderr: `text` for people, `json` (one object a line) for Loki or
    /// Elastic. The level comes from HOOKGATE_LOG (default info).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    #[command(after_help = "Examples:
  hookgate serve                                   # reads ./hookgate.toml
  hookgate serve --config /etc/hookgate/hookgate.toml
  WEBHOOK_ENDPOINT_SECRET_KEY=… hookgate serve --preset entrupy --listen localhost:8080")]
    Serve(ServeArgs),
    /// Validate a configuration file without starting anything.
    #[command(after_help = "Example:\n  hookgate check-config --config hookgate.toml")]
    CheckConfig {
        /// The configuration file.
        #[arg(long, short, default_value = "hookgate.toml")]
        config: PathBuf,
    },
    /// Sign a request exactly as a provider does and send it (a provider simulator).
    #[command(after_help = "Examples:
  hookgate send http://localhost:8080/notify --preset entrupy --secret my-secret --body event.json
  hookgate send http://localhost:8080/client_webhook_endpoint --preset qitech --key qitech_private.pem --param api_client_key=K
  hookgate send http://localhost:8080/pps --preset pps --issuer http://127.0.0.1:9000 --issuer-key issuer.pem --audience my-aud
  hookgate send http://localhost:8080/hooks/custom --config hookgate.toml --source custom --dry-run > request.http")]
    Send(send::SendArgs),
    /// Print the headers a provider would add to a request (one per line), or with
    /// `--format curl` a ready curl command with the exact body that was signed.
    #[command(
        after_help = "Examples:\n  hookgate sign http://localhost:8080/github --preset github --secret S --body e.json\n  hookgate sign http://localhost:8080/github --preset github --secret S --format curl | sh"
    )]
    Sign(send::SendArgs),
    /// Verify a captured raw HTTP request offline, as the server would, and say why it fails.
    #[command(after_help = "Examples:
  hookgate verify --config hookgate.toml --source github --request captured.http
  hookgate verify --config hookgate.toml --source slack --request captured.http --at 2018-07-12T18:36:58Z")]
    Verify(verify::VerifyArgs),
    /// Generate a key pair (PEM and JWK) or a Standard Webhooks secret.
    #[command(after_help = "Examples:
  hookgate keygen --alg ES512 --out qitech        # qitech.pem, qitech.pub.pem, qitech.jwk.json
  hookgate keygen --alg whsec                     # prints a whsec_… secret")]
    Keygen(keygen::KeygenArgs),
    /// Run a local OIDC issuer (discovery + JWKS) for testing OIDC integrations.
    #[command(
        name = "oidc-issuer",
        after_help = "Example:\n  hookgate oidc-issuer --key issuer.pem --listen 127.0.0.1:9000"
    )]
    OidcIssuer(oidc_issuer::IssuerArgs),
    /// List the presets, or show one with a ready-to-paste `[[source]]` block.
    #[command(after_help = "Examples:\n  hookgate presets\n  hookgate presets show stripe")]
    Presets {
        #[command(subcommand)]
        command: Option<presets::PresetsCommand>,
    },
    /// List, show or replay stored events.
    #[command(subcommand)]
    Events(events::EventsCommand),
    /// Print a shell completion script.
    #[command(
        after_help = "Example:\n  hookgate completions bash > /etc/bash_completion.d/hookgate"
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Args)]
pub(crate) struct ServeArgs {
    /// The configuration file.
    #[arg(
        long,
        short,
        default_value = "hookgate.toml",
        conflicts_with = "preset"
    )]
    pub config: PathBuf,
    /// One-line mode: a single source of this preset at its documented path, its secret
    /// from the preset's documented environment variable (entrupy: WEBHOOK_ENDPOINT_SECRET_KEY).
    #[arg(long)]
    pub preset: Option<String>,
    /// Address to listen on, instead of `[server] listen` (one-line mode: default
    /// 127.0.0.1:8080).
    #[arg(long)]
    pub listen: Option<String>,
    /// A further preset parameter in one-line mode, KEY=VALUE (e.g. allow_http_issuers=true).
    #[arg(long = "param", requires = "preset", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
    /// Store URL, instead of `[store] url` (one-line mode: default the embedded SQLite file).
    #[arg(long)]
    pub store: Option<String>,
}

pub(crate) fn parse_param(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("`{text}` is not KEY=VALUE"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("HOOKGATE_LOG")
        .unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_ansi(false)
            .init(),
    }
    let result = match cli.command {
        Command::CheckConfig { config } => check_config(&config),
        Command::Serve(args) => return serve::serve(args),
        Command::Send(args) => send::send(args, false),
        Command::Sign(args) => send::send(args, true),
        Command::Verify(args) => verify::verify(args),
        Command::Keygen(args) => keygen::keygen(args),
        Command::OidcIssuer(args) => oidc_issuer::run(args),
        Command::Events(command) => events::run(command),
        Command::Presets { command } => presets::run(command),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "hookgate",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

/// A command's failure: one line for the user and the exit code.
pub(crate) struct Failure {
    pub message: String,
    pub code: u8,
}

impl Failure {
    pub fn config(message: impl std::fmt::Display) -> Failure {
        Failure {
            message: message.to_string(),
            code: EXIT_CONFIG,
        }
    }

    pub fn runtime(message: impl std::fmt::Display) -> Failure {
        Failure {
            message: message.to_string(),
            code: EXIT_RUNTIME,
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Failure {
        Failure::runtime(format!("{e:#}"))
    }
}

pub(crate) type CommandResult = Result<ExitCode, Failure>;

/// What each broker destination's broker says (reachable; for NATS, whether its stream
/// exists), each within 5 seconds, all at once; `None` for the other kinds.
fn probe_brokers(
    destinations: &[std::sync::Arc<hookgate_server::delivery::Destination>],
) -> Vec<Option<Result<String, String>>> {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return destinations.iter().map(|_| None).collect();
    };
    runtime.block_on(async {
        let mut probes = tokio::task::JoinSet::new();
        for (i, destination) in destinations.iter().enumerate() {
            let destination = destination.clone();
            probes.spawn(async move {
                let probe = tokio::time::timeout(
                    std::time::Duration::from_secs(5),
                    destination.sink.probe(),
                )
                .await
                .unwrap_or_else(|_| Some(Err("the broker did not answer within 5s".into())));
                (i, probe)
            });
        }
        let mut found = vec![None; destinations.len()];
        while let Some(Ok((i, probe))) = probes.join_next().await {
            found[i] = probe;
        }
        found
    })
}

fn check_config(config: &std::path::Path) -> CommandResult {
    // Every error, not only the first: one run of check-config shows all there is to fix.
    let loaded =
        hookgate_server::Config::check(config, &hookgate_server::config::ProcessEnvironment)
            .map_err(|errors| {
                let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
                Failure::config(lines.join("\nerror: "))
            })?;
    // What a file cannot say about itself: the programs and the store directory.
    let mut problems = Vec::new();
    for (i, destination) in loaded.destinations.iter().enumerate() {
        if let Some(program) = destination.program() {
            if let Err(why) = runnable(&program) {
                problems.push(format!(
                    "{}: destination[{i}] ({}).command[0]: `{program}` {why}",
                    loaded.file, destination.name
                ));
            }
        }
    }
    if let Some(path) = loaded.store_url.strip_prefix("sqlite://") {
        if let Err(why) = writable_directory_for(std::path::Path::new(path)) {
            problems.push(format!("{}: store.url: {why}", loaded.file));
        }
    }
    if !problems.is_empty() {
        return Err(Failure::config(problems.join("\nerror: ")));
    }
    outln!("{}: ok", config.display());
    outln!("store: {}", hookgate_store::redacted_url(&loaded.store_url));
    for source in &loaded.sources {
        let schemes: Vec<&str> = source.source.checks().iter().map(|c| c.kind()).collect();
        outln!(
            "source {}: {} {} ({}{})",
            source.name,
            source.methods.join("|"),
            source.path,
            source
                .source
                .preset()
                .map(|p| format!("preset {p}, "))
                .unwrap_or_default(),
            schemes.join(" + ")
        );
    }
    let probes = probe_brokers(&loaded.destinations);
    for (destination, probe) in loaded.destinations.iter().zip(probes) {
        match probe {
            None => outln!(
                "destination {}: {}",
                destination.name,
                destination.sink.kind()
            ),
            Some(Ok(state)) => outln!(
                "destination {}: {} ({state})",
                destination.name,
                destination.sink.kind()
            ),
            // The file is valid; the broker's state is not the file's, and may change
            // before `serve` starts: said, not fatal.
            Some(Err(why)) => {
                outln!(
                    "destination {}: {}",
                    destination.name,
                    destination.sink.kind()
                );
                eprintln!("warning: destination {}: {why}", destination.name);
            }
        }
    }
    for route in &loaded.routes.0 {
        outln!("route: {}", route.describe());
    }
    if !loaded.destinations.is_empty() && loaded.routes.0.is_empty() {
        outln!("note: no route: every event is stored unrouted (nothing is delivered)");
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether `program` names an executable file (a bare name: one found in PATH).
pub(crate) fn runnable(program: &str) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |path: &std::path::Path| {
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let path = std::path::Path::new(program);
        if !path.exists() {
            return Err("does not exist".into());
        }
        if !executable(path) {
            return Err("is not an executable file".into());
        }
        return Ok(());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    if std::env::split_paths(&path).any(|dir| executable(&dir.join(program))) {
        Ok(())
    } else {
        Err("is not found in PATH".into())
    }
}

/// Whether the database at `path` can be created or written: its nearest existing
/// directory accepts a new file.
fn writable_directory_for(path: &std::path::Path) -> Result<(), String> {
    let mut dir = path
        .parent()
        .unwrap_or(std::path::Path::new("."))
        .to_path_buf();
    if dir.as_os_str().is_empty() {
        dir = ".".into();
    }
    while !dir.exists() {
        match dir.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => dir = parent.to_path_buf(),
            _ => {
                dir = ".".into();
                break;
            }
        }
    }
    let probe = dir.join(format!(".hookgate-check-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(format!("cannot write in {}: {e}", dir.display())),
    }
}
