//! Herald binary: load the configuration, start one shard per core, wait for a signal.
//! Nothing else lives here.

use herald::config::{self, Action};
use std::process::ExitCode;
use std::sync::Arc;

fn main() -> ExitCode {
    let env = |k: &str| std::env::var(k).ok();
    let read = |p: &std::path::Path| std::fs::read_to_string(p);
    let action = match config::load(std::env::args_os(), &env, &read) {
        Ok(a) => a,
        // --help, --version from clap, and usage errors print themselves (status 0 or 2).
        Err(config::ConfigError::Cli(e)) => e.exit(),
        Err(e) => {
            eprintln!("herald: {e}");
            return ExitCode::from(2);
        }
    };
    match action {
        Action::Version(v) => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        Action::MakeConfig { output, text } => match output {
            Some(path) => match std::fs::write(&path, text) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("herald: cannot write {}: {e}", path.display());
                    ExitCode::from(1)
                }
            },
            None => {
                print!("{text}");
                ExitCode::SUCCESS
            }
        },
        Action::Run(cfg, ignored) => run(Arc::from(cfg), &ignored),
    }
}

fn run(cfg: Arc<config::Config>, ignored: &[String]) -> ExitCode {
    init_logging(&cfg.log_level);
    for k in ignored {
        tracing::warn!(key = %k, "ignoring unknown configuration key");
    }
    herald::mem::tune();
    let signals = match herald::signals::install() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot install signal handlers");
            return ExitCode::from(1);
        }
    };
    let herald::server::Running {
        shared,
        handles,
        addr,
        extra_addrs,
        ..
    } = match herald::server::spawn(cfg.clone()) {
        Ok(x) => x,
        Err(e) => {
            tracing::error!(error = %e, host = %cfg.host, port = cfg.port, "cannot start");
            return ExitCode::from(1);
        }
    };
    let scheme = |tls: bool| if tls { "https" } else { "http" };
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        %addr,
        shards = handles.len(),
        echo = cfg.echo_path.as_deref().unwrap_or("off"),
        "Herald serving on {}://{addr} (Channelstream 0.7.1 API; Pusher protocol 7 on /app/ and /apps/)",
        scheme(cfg.tls.is_some()),
    );
    if cfg.pushi.enabled {
        tracing::info!(
            data_dir = %cfg.pushi.data_dir.display(),
            sync = if cfg.pushi.sync_full { "full" } else { "normal" },
            "Pushi 0.6.10 dialect on /{{64-hex key}} and its REST API; store opened"
        );
        let apps = herald::pusher::apps::Apps::from_config(&cfg);
        if !apps
            .iter()
            .any(|a| herald::pushi::dialect::is_socket_path(a.key.as_bytes()))
        {
            tracing::warn!(
                "no app key is 64 hex digits: Pushi websockets (/{{key}}) cannot reach any app"
            );
        }
    }
    for (l, a) in cfg.listeners.iter().zip(&extra_addrs) {
        let s = scheme(l.tls.is_some());
        tracing::info!(listener = %l.name, "also serving on {s}://{a}");
    }
    if cfg.uses_default_secret() {
        tracing::warn!("Using default secret! Remember to set that for production.");
    }
    if cfg.uses_default_admin_secret() {
        tracing::warn!("Using default admin secret! Remember to set that for production.");
    }
    tracing::warn!(allowed = ?cfg.allow_posting_from, "IPs allowed to post to the API");
    herald::signals::wait_for_shutdown(signals, &shared);
    let mut code = ExitCode::SUCCESS;
    for h in handles {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, "shard failed");
                code = ExitCode::from(1);
            }
            Err(_) => {
                tracing::error!("shard thread panicked");
                code = ExitCode::from(1);
            }
        }
    }
    tracing::info!("Herald stopped");
    code
}

fn init_logging(level: &str) {
    let level = match level.to_ascii_uppercase().as_str() {
        "DEBUG" | "NOTSET" => "debug",
        "WARNING" | "WARN" => "warn",
        "ERROR" | "CRITICAL" => "error",
        _ => "info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("HERALD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
