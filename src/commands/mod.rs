//! One function per subcommand. This is the layer that talks to the terminal: it prints
//! results to stdout, problems to stderr, and returns the exit code.

mod plan;
mod show;
mod sync;

use std::collections::HashMap;
use std::fmt::Display;
use std::io::Write as _;
use std::path::Path;

use crate::input::{self, HostSettings, InputError, Inputs};
use crate::mapping::{map_all, Job};
use crate::registry::{ClientOptions, HostTls};
use crate::settings::{CommandSettings, InputSettings, PlanSettings, Settings};

pub async fn run(settings: Settings) -> u8 {
    match settings.command {
        CommandSettings::ShowRawImages { inputs } => show::show_raw_images(&inputs).await,
        CommandSettings::ShowImages {
            inputs,
            destination,
        } => show::show_images(&inputs, &destination).await,
        CommandSettings::Plan(plan) => plan::plan(&plan).await,
        CommandSettings::Verify(plan) => plan::verify(&plan).await,
        CommandSettings::Sync(sync) => sync::sync(*sync).await,
    }
}

/// A line on stdout; false when stdout is gone (a closed pipe such as `| head`, or a closed
/// terminal). Never a panic: a run still finishes its work, its report and its cleanup.
fn say(line: impl Display) -> bool {
    writeln!(std::io::stdout(), "{line}").is_ok()
}

/// A line on stderr; dropped when stderr is gone, as with [`say`].
fn say_err(line: impl Display) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Prints every input error, one `FILE:LINE: reason` per line, on stderr.
fn print_input_errors(errors: &[InputError]) {
    for error in errors {
        say_err(error);
    }
    say_err(format!(
        "ferry: error: {} problem{} in the input; nothing was copied",
        errors.len(),
        if errors.len() == 1 { "" } else { "s" }
    ));
}

/// Reads all inputs, printing every error on failure.
async fn read_inputs(inputs: &InputSettings) -> Option<Inputs> {
    input::read_all(&inputs.sources, inputs.format)
        .await
        .map_err(|errors| print_input_errors(&errors))
        .ok()
}

/// What `plan`, `verify` and `sync` work on: the mapped jobs, and the registry settings with
/// what the inputs and the accounts file say about single registries folded in.
struct Loaded {
    jobs: Vec<Job>,
    registry: ClientOptions,
    src_per_host: HashMap<String, HostTls>,
}

/// Reads, maps and folds in per-registry settings; prints every error and returns `None` on
/// any (nothing may run then).
async fn load(settings: &PlanSettings) -> Option<Loaded> {
    let inputs = read_inputs(&settings.inputs).await?;
    let accounts = match &settings.accounts {
        Some(path) => read_accounts(path)?,
        None => Vec::new(),
    };
    let jobs = map_all(&inputs.entries, &settings.destination)
        .map_err(|errors| print_input_errors(&errors))
        .ok()?;
    let mut registry = settings.registry.clone();
    let mut src_per_host = HashMap::new();
    // A registry section of the input describes a source registry.
    for host in &inputs.hosts {
        if let Some(creds) = &host.credentials {
            registry
                .source
                .credentials
                .per_host
                .insert(host.host.clone(), creds.clone());
        }
        if host.tls_verify.is_some() || host.cert_dir.is_some() {
            let tls = HostTls {
                tls_verify: host.tls_verify,
                cert_dir: host.cert_dir.clone(),
            };
            registry
                .source
                .per_host
                .insert(host.host.clone(), tls.clone());
            src_per_host.insert(host.host.clone(), tls);
        }
    }
    // An account is for its registry whichever side it is on; the input's own settings win.
    for account in &accounts {
        if let Some(creds) = &account.credentials {
            for side in [&mut registry.source, &mut registry.destination] {
                side.credentials
                    .per_host
                    .entry(account.host.clone())
                    .or_insert_with(|| creds.clone());
            }
        }
    }
    Some(Loaded {
        jobs,
        registry,
        src_per_host,
    })
}

fn read_accounts(path: &Path) -> Option<Vec<HostSettings>> {
    let name = path.display().to_string();
    let text = std::fs::read(path)
        .map_err(|source| InputError::Read {
            file: name.clone(),
            source,
        })
        .and_then(|bytes| input::decode_text(&name, bytes));
    let text = match text {
        Ok(text) => text,
        Err(error) => {
            print_input_errors(&[error]);
            return None;
        }
    };
    let (hosts, errors) = input::parse_accounts_json(&name, &text);
    if errors.is_empty() {
        Some(hosts)
    } else {
        print_input_errors(&errors);
        None
    }
}
