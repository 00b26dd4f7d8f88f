//! `hookgate serve`: the gateway.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use hookgate_server::config::{Config, ProcessEnvironment};
use hookgate_server::Gateway;
use hookgate_store::{Store, StoreOptions};

use crate::{ServeArgs, EXIT_CONFIG, EXIT_RUNTIME};

pub fn serve(args: ServeArgs) -> ExitCode {
    let config = match &args.preset {
        Some(preset) => Config::for_preset(
            preset,
            args.listen.as_deref().unwrap_or("127.0.0.1:8080"),
            &args.params,
            &ProcessEnvironment,
        ),
        None => Config::load(&args.config, &ProcessEnvironment),
    }
    .map(|mut c| {
        // Flags win over the file.
        if let Some(listen) = &args.listen {
            c.listen = listen.clone();
        }
        if let Some(store) = &args.store {
            c.store_url = store.clone();
        }
        c
    });
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            if args.preset.is_none() && !args.config.exists() {
                eprintln!("hint: write a hookgate.toml (see examples/), or start one source with: hookgate serve --preset NAME");
            }
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    // A reload reads the same file again, with the same flags winning over it.
    let reload = ReloadFrom {
        file: args.preset.is_none().then(|| args.config.clone()),
        listen: args.listen.clone(),
        store: args.store.clone(),
    };
    match runtime.block_on(run(config, reload)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

/// Where SIGHUP reads the configuration again.
struct ReloadFrom {
    /// The configuration file; `None` in the one-line `--preset` mode.
    file: Option<std::path::PathBuf>,
    listen: Option<String>,
    store: Option<String>,
}

impl ReloadFrom {
    /// The file read and validated again (the flags win over it, as at start), with the
    /// checks `check-config` makes of what a file cannot say about itself.
    fn load(&self, file: &std::path::Path) -> Result<Config, String> {
        let mut config = Config::load(file, &ProcessEnvironment).map_err(|e| e.to_string())?;
        if let Some(listen) = &self.listen {
            config.listen = listen.clone();
        }
        if let Some(store) = &self.store {
            config.store_url = store.clone();
        }
        for (i, destination) in config.destinations.iter().enumerate() {
            if let Some(program) = destination.program() {
                crate::runnable(&program).map_err(|why| {
                    format!(
                        "{}: destination[{i}] ({}).command[0]: `{program}` {why}",
                        config.file, destination.name
                    )
                })?;
            }
        }
        Ok(config)
    }
}

async fn run(config: Config, reload: ReloadFrom) -> anyhow::Result<()> {
    // Signal handlers go in before anything is announced, so a SIGTERM sent as soon as the
    // gateway says it listens is a clean shutdown, not the default kill.
    let shutdown = shutdown_signal()?;
    let metrics = Arc::new(hookgate_server::metrics::Metrics::for_config(&config));
    let options = StoreOptions {
        max_size: config.store_max_size,
        relaxed_durability: config.store_durability == hookgate_server::config::Durability::Relaxed,
        observer: metrics.commit_observer(),
        ..Default::default()
    };
    let store = Store::open(&config.store_url, &options)
        .await
        .with_context(|| {
            format!(
                "opening the store {}",
                hookgate_store::redacted_url(&config.store_url)
            )
        })?;
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (in use? another hookgate running?)",
                config.listen
            )
        })?;
    let address = listener.local_addr()?;
    let admin = match &config.admin_listen {
        Some(listen) => Some(
            tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot listen on {listen} ([admin] listen)"))?,
        ),
        None => None,
    };
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let operators = match &admin {
        Some(l) => format!("{scheme}://{}", l.local_addr()?),
        None => format!("{scheme}://{address}"),
    };
    if store.is_discard() {
        tracing::warn!("STORE IS discard:// — events are acknowledged WITHOUT being stored (benchmark baseline only)");
    }
    for source in &config.sources {
        if source.demo_secret {
            let set = if source.demo_variables.is_empty() {
                format!("set the real secret in {}", config.file)
            } else {
                format!("set {}", source.demo_variables.join(" and "))
            };
            tracing::warn!(
                source = %source.name,
                "!!! source `{}` uses a DEMO secret from {} — anyone can sign requests for it; {set} before exposing this gateway !!!",
                source.name,
                config.file
            );
        }
        tracing::info!(source = %source.name, path = %source.path, preset = %source.source.preset().unwrap_or("-"), "source ready: {scheme}://{address}{}", source.path);
    }
    for destination in &config.destinations {
        tracing::info!(destination = %destination.name, kind = destination.sink.kind(), "destination ready");
    }
    for route in &config.routes.0 {
        tracing::info!("route: {}", route.describe());
    }
    tracing::info!("health: {scheme}://{address}/health, readiness: {scheme}://{address}/ready");
    tracing::info!(store = %hookgate_store::redacted_url(&config.store_url), "hookgate listening on {scheme}://{address}");
    if config.admin_token.is_some() || config.admin_read_token.is_some() {
        tracing::info!("admin API: {operators}/api/v1 (OpenAPI: {operators}/api/v1/openapi.json)");
    } else {
        tracing::info!("admin API off: set [admin] token to enable {operators}/api/v1");
    }
    if config.metrics
        && (admin.is_some() || config.admin_token.is_some() || config.admin_read_token.is_some())
    {
        tracing::info!("metrics: {operators}/metrics");
    }
    let gateway = Arc::new(Gateway::with_metrics(config, store, metrics));
    reload_on_hangup(gateway.clone(), reload)?;
    hookgate_server::serve(listener, admin, gateway, shutdown).await?;
    Ok(())
}

/// SIGHUP reads the configuration file again and, when it is valid, puts it in force
/// without dropping a connection or a request (see `Gateway::reload`); when it is not, the
/// running configuration stays and the log says why. It then re-reads the TLS certificate
/// and key (a pair that does not load leaves the old one serving). The handler also keeps
/// SIGHUP from ending the process.
fn reload_on_hangup(gateway: Arc<Gateway>, from: ReloadFrom) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangup =
            signal(SignalKind::hangup()).context("cannot install the SIGHUP handler")?;
        tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                match &from.file {
                    None => tracing::info!(
                        "SIGHUP: started with --preset, there is no configuration file to reload"
                    ),
                    Some(file) => match from.load(file) {
                        Err(why) => tracing::error!(
                            "SIGHUP: configuration not reloaded, the running one stays: {why}"
                        ),
                        Ok(config) => report(&gateway.reload(config).await, file),
                    },
                }
                match gateway.reload_tls() {
                    Ok(true) => tracing::info!("SIGHUP: TLS certificate and key reloaded"),
                    Ok(false) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "SIGHUP: TLS certificate not reloaded; the previous one keeps serving")
                    }
                }
            }
        });
    }
    Ok(())
}

/// One line for what a reload changed, and a warning for what it could not.
fn report(reloaded: &hookgate_server::Reloaded, file: &std::path::Path) {
    let list = |sign: &str, names: &[String]| {
        names
            .iter()
            .map(|n| format!("{sign}{n}"))
            .collect::<Vec<_>>()
    };
    let sources = [
        list("+", &reloaded.sources.added),
        list("~", &reloaded.sources.changed),
        list("-", &reloaded.sources.removed),
    ]
    .concat();
    let destinations = [
        list("+", &reloaded.destinations.added),
        list("~", &reloaded.destinations.replaced),
        list("-", &reloaded.destinations.removed),
    ]
    .concat();
    let or_unchanged = |changes: Vec<String>| {
        if changes.is_empty() {
            "unchanged".to_owned()
        } else {
            changes.join(" ")
        }
    };
    tracing::info!(
        "SIGHUP: configuration reloaded from {}: sources {}; destinations {}; routes {} -> {}",
        file.display(),
        or_unchanged(sources),
        or_unchanged(destinations),
        reloaded.routes.0,
        reloaded.routes.1
    );
    if !reloaded.need_restart.is_empty() {
        tracing::warn!(
            "SIGHUP: {} changed; these take effect at a restart (the running values stay)",
            reloaded.need_restart.join(", ")
        );
    }
    for (destination, pending) in &reloaded.stranded {
        tracing::warn!(
            destination = %destination,
            pending,
            "destination `{destination}` is no longer configured: its {pending} pending deliveries stay in the store and are delivered once it is configured again (the admin API's destinations list still shows them)"
        );
    }
}

/// Completes on SIGINT or SIGTERM; the handlers are installed when this is called.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut terminate =
            signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
        let mut interrupt =
            signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => tracing::info!("SIGINT received"),
                _ = terminate.recv() => tracing::info!("SIGTERM received"),
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}
