//! One function per subcommand, each thin: settings → the work → an [`Outcome`], or the
//! [`Error`] that stopped it. This is the layer that talks to the terminal: it prints results
//! to stdout and warnings to stderr, both through [`crate::report::log`] (control characters
//! escaped, clear of the live view, JSON on stderr with `--log-format json`).

mod manpage;
mod plan;
mod report;
mod serve;
mod show;
mod sync;

use std::fmt::Display;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use std::sync::Arc;

use crate::error::{Error, Outcome};
use crate::input::{self, Entry, HostSettings, InputError, Inputs, NamespaceEntry};
use crate::mapping::{map_each, target_for};
use crate::model::{Destination, ImageResult, Job};
use crate::plan::namespace::Discovery;
use crate::registry::{ClientOptions, RegistryClient};
use crate::report::escape;
use crate::settings::{CommandSettings, InputSettings, PlanSettings, Settings};

pub async fn run(settings: Settings) -> Result<Outcome, Error> {
    let to_stdout = |path: &Option<std::path::PathBuf>| path.as_deref() == Some(Path::new("-"));
    let report_on_stdout = match &settings.command {
        CommandSettings::Plan(plan) | CommandSettings::Verify(plan) => to_stdout(&plan.report),
        CommandSettings::Sync(sync) => to_stdout(&sync.plan.report) || to_stdout(&sync.failed_list),
        CommandSettings::Serve(serve) => {
            to_stdout(&serve.sync.plan.report) || to_stdout(&serve.sync.failed_list)
        }
        CommandSettings::ReportMerge {
            out, failed_list, ..
        } => to_stdout(&Some(out.clone())) || to_stdout(failed_list),
        CommandSettings::ReportCatalog { output, .. } => to_stdout(&Some(output.clone())),
        _ => false,
    };
    // A report on stdout has it to itself: the lines meant for people go to stderr.
    HUMAN_ON_STDERR.store(report_on_stdout, Ordering::Relaxed);
    match settings.command {
        CommandSettings::ShowRawImages {
            inputs,
            destination,
            more_destinations,
        } => {
            let destinations = [vec![destination], more_destinations].concat();
            show::show_raw_images(&inputs, &destinations).await
        }
        CommandSettings::ShowImages {
            inputs,
            destination,
            more_destinations,
        } => {
            let destinations = [vec![destination], more_destinations].concat();
            show::show_images(&inputs, &destinations).await
        }
        CommandSettings::Plan(plan) => plan::plan(&plan).await,
        CommandSettings::Verify(plan) => plan::verify(&plan).await,
        CommandSettings::Sync(sync) => sync::sync(*sync).await,
        CommandSettings::Serve(settings) => serve::serve(*settings).await,
        CommandSettings::ReportMerge {
            out,
            inputs,
            failed_list,
        } => report::merge(&out, &inputs, failed_list.as_deref()),
        CommandSettings::ReportCatalog {
            inputs,
            format,
            output,
        } => report::write_catalog(&inputs, format, &output),
        CommandSettings::Completions(shell) => show::completions(shell),
        CommandSettings::Manpage(dir) => manpage::manpage(dir.as_deref()),
    }
}

/// Set when `--report -` or `--failed-list -` gives stdout to a report.
static HUMAN_ON_STDERR: AtomicBool = AtomicBool::new(false);

/// A line on stdout (stderr when a report has stdout); false when it is gone (a closed pipe
/// such as `| head`, or a closed terminal). Never a panic: a run still finishes its work, its
/// report and its cleanup.
fn say(line: impl Display) -> bool {
    if HUMAN_ON_STDERR.load(Ordering::Relaxed) {
        crate::report::log::stderr_text(&line.to_string());
        return true;
    }
    crate::report::log::stdout_line(&line.to_string())
}

/// A line on stderr (see [`crate::report::log::stderr_text`]); dropped when stderr is gone, as
/// with [`say`].
fn say_err(line: impl Display) {
    crate::report::log::stderr_text(&line.to_string());
}

/// Reads all inputs; every problem in them is the error.
async fn read_inputs(inputs: &InputSettings) -> Result<Inputs, Error> {
    let (read, errors) = input::read_all(&inputs.sources, inputs.format).await;
    if errors.is_empty() {
        Ok(read)
    } else {
        Err(Error::Input(errors))
    }
}

/// What the inputs hold: every entry read, this shard's jobs, the accounts file's hosts, and
/// the run's list fingerprint (over every shard's jobs, see [`crate::shard::fingerprint_with`]).
struct Read {
    inputs: Inputs,
    jobs: Vec<Job>,
    /// The namespace lines, each checked to map to the destination; listed when planned.
    namespaces: Vec<NamespaceEntry>,
    accounts: Vec<HostSettings>,
    fingerprint: String,
}

/// Reads every input and the accounts file, and maps every entry to each of `destinations`
/// (see [`map_each`]): all their problems make one error (syntax, unmappable entries,
/// duplicate targets). Warnings are printed either way. `filters` (the tag filters, as flags)
/// are for the fingerprint.
async fn read_and_map(
    inputs: &InputSettings,
    destinations: &[Destination],
    accounts: Option<&Path>,
    filters: &[String],
) -> Result<Read, Error> {
    let (read, mut errors) = input::read_all(&inputs.sources, inputs.format).await;
    let accounts = match accounts {
        Some(path) => {
            let (hosts, mut bad) = read_accounts(path);
            errors.append(&mut bad);
            hosts
        }
        None => Vec::new(),
    };
    if errors.is_empty() {
        warn_empty_inputs(inputs, &read);
        for note in &read.notes {
            say_err(format!("ferry: {note}"));
        }
    }
    let mut mapped = map_each(&read.entries, destinations);
    errors.extend(mapped.errors);
    for job in &mapped.jobs {
        if let (Some(true), crate::model::Target::Oci { .. }) = (job.signatures, &job.target) {
            errors.push(InputError::line(
                job.origin.clone(),
                "signatures: true: signatures, attestations, SBOMs and referrers are copied into \
                 a registry, not into OCI layouts; give --dest PREFIX",
            ));
        }
    }
    for namespace in &read.namespaces {
        for destination in destinations {
            if let Err(reason) = crate::plan::namespace::check_target(namespace, destination) {
                errors.push(InputError::line(namespace.origin.clone(), reason));
                break;
            }
        }
    }
    let namespace_lines: Vec<String> = read
        .namespaces
        .iter()
        .map(|ns| {
            let filters = ns.filter.as_ref().map(|f| f.as_flags()).unwrap_or_default();
            format!("{}\t{}", ns.as_list_line(), filters.join("\0"))
        })
        .collect();
    let fingerprint = crate::shard::fingerprint_with(
        &label(destinations),
        filters,
        &mapped.jobs,
        &namespace_lines,
    );
    match (inputs.shard, destinations) {
        (None, _) => {}
        (Some(shard), [_]) => mapped.jobs.retain(|job| shard.contains(job)),
        // Each entry where its target under the first destination places it.
        (Some(shard), [first, ..]) => {
            let held: Vec<Entry> = read
                .entries
                .iter()
                .filter(|entry| target_for(entry, first).is_ok_and(|t| shard.holds(&t)))
                .cloned()
                .collect();
            mapped.jobs = map_each(&held, destinations).jobs;
        }
        (Some(_), []) => mapped.jobs.clear(),
    }
    for warning in &mapped.warnings {
        say_err(warning.as_warning());
    }
    if errors.is_empty() {
        Ok(Read {
            namespaces: read.namespaces.clone(),
            inputs: read,
            jobs: mapped.jobs,
            accounts,
            fingerprint,
        })
    } else {
        Err(Error::Input(errors))
    }
}

/// The destinations as reports name them: one's label (see [`Destination::label`]), several
/// labels joined by `, `.
pub(crate) fn label(destinations: &[Destination]) -> String {
    let labels: Vec<String> = destinations.iter().map(Destination::label).collect();
    labels.join(", ")
}

/// The labels of several destinations, for reports (each entry names its own); none for one.
pub(crate) fn several(destinations: &[Destination]) -> Vec<String> {
    match destinations {
        [_] => Vec::new(),
        _ => destinations.iter().map(Destination::label).collect(),
    }
}

/// Says which inputs hold no image at all: an empty list does nothing, which is worth a word
/// (a list truncated on its way, a wrong file), though it is no error.
fn warn_empty_inputs(inputs: &InputSettings, read: &Inputs) {
    for source in &inputs.sources {
        if let input::InputSource::Bundle(_) = source {
            // A bundle without an image is refused as it is read.
            continue;
        }
        let name = source.to_string();
        let named = |origin: &crate::model::Origin| *origin.file == *name;
        if !read.entries.iter().any(|entry| named(&entry.origin))
            && !read.namespaces.iter().any(|ns| named(&ns.origin))
        {
            say_err(format!("ferry: warning: {name}: no images in this list"));
        }
    }
}

/// What `plan`, `verify` and `sync` work on: the mapped jobs, and the registry options with
/// what the inputs and the accounts file say about single registries added (see
/// [`PlanSettings::registry_for`]).
struct Loaded {
    jobs: Vec<Job>,
    /// Namespace lines, to be listed with the run's client (see [`expand_namespaces`]).
    namespaces: Vec<NamespaceEntry>,
    registry: ClientOptions,
    /// The run's list fingerprint, for its report.
    fingerprint: String,
}

/// Says which `--registry-rps`/`--registry-jobs` hosts no job of the run reaches: a typo, or a
/// registry reached under another name.
fn warn_unused_hosts(settings: &PlanSettings, jobs: &[Job], namespaces: &[NamespaceEntry]) {
    let conf = &settings.registry.access.conf;
    let mut reached: std::collections::HashSet<String> = crate::run::request_hosts(jobs, conf)
        .into_values()
        .collect();
    reached.extend(
        namespaces
            .iter()
            .map(|ns| conf.host_for(ns.namespace.domain())),
    );
    for flag in &settings.host_flags {
        if !reached.contains(&flag.host) {
            say_err(format!(
                "ferry: warning: {} {}: no image of this run comes from or goes to {}",
                flag.flag, flag.written, flag.host
            ));
        }
    }
}

/// Reads and maps the inputs, and builds the run's registry options from them; any problem is
/// the error (nothing may run then).
async fn load(settings: &PlanSettings) -> Result<Loaded, Error> {
    // The platforms asked for change what every entry mirrors, as the tag filters do.
    let mut filters = settings.rerun.filter_flags.clone();
    if let Some(platforms) = &settings.options.platforms {
        filters.extend(platforms.as_flags());
    }
    let Read {
        inputs,
        jobs,
        namespaces,
        accounts,
        fingerprint,
    } = read_and_map(
        &settings.inputs,
        &settings.destinations(),
        settings.accounts.as_deref(),
        &filters,
    )
    .await?;
    let registry = settings.registry_for(&inputs.hosts, &accounts);
    warn_unused_hosts(settings, &jobs, &namespaces);
    Ok(Loaded {
        jobs,
        namespaces,
        registry,
        fingerprint,
    })
}

/// A run's namespace lines, listed: the whole-repository jobs of this shard, the lines that
/// could not be listed (as failed results, each said by the shard its pattern hashes to), and
/// what each line found, for `plan -v`.
struct Namespaced {
    jobs: Vec<Job>,
    discovery: Discovery,
    failed: Vec<ImageResult>,
}

/// Lists every namespace line with `client` (see [`crate::plan::namespace`]), and says what
/// is worth a word: a line that lists nothing, names that are no repository names, repositories
/// the destination holds that a line no longer lists (kept: ferry never deletes).
async fn expand_namespaces(
    settings: &PlanSettings,
    client: &Arc<RegistryClient>,
    namespaces: &[NamespaceEntry],
) -> Namespaced {
    use crate::plan::namespace as ns;
    let options = &settings.options;
    if namespaces.is_empty() {
        return Namespaced {
            jobs: Vec::new(),
            discovery: Discovery::default(),
            failed: Vec::new(),
        };
    }
    let discovery = ns::discover(client, &options.namespaces, &options.retry, namespaces).await;
    let destinations = settings.destinations();
    let (groups, problems) = ns::jobs(&discovery.expanded, &destinations);
    for problem in problems {
        say_err(format!("ferry: warning: {}", escape::one_line(&problem)));
    }
    for expanded in &discovery.expanded {
        let entry = &expanded.entry;
        if expanded.repositories.is_empty() {
            say_err(format!(
                "ferry: warning: {}: {} lists no repositories{}, so nothing is copied for it",
                entry.origin,
                entry.namespace,
                match expanded.excluded.len() {
                    0 => String::new(),
                    n => format!(" but the {n} --exclude-repos drops"),
                }
            ));
        }
        if !expanded.refused.is_empty() {
            let names: Vec<String> = expanded
                .refused
                .iter()
                .map(|name| format!("{:?}", escape::one_line(name)))
                .collect();
            say_err(format!(
                "ferry: warning: {}: {} lists {} that {} no repository name, left out: {}",
                entry.origin,
                entry.namespace,
                crate::words::count(names.len(), "name", "names"),
                if names.len() == 1 { "is" } else { "are" },
                names.join(", ")
            ));
        }
    }
    let shard = settings.inputs.shard;
    // A repository's shard is the one its target under the first destination places it in.
    let jobs = groups
        .into_iter()
        .filter(|group| match (shard, group.first()) {
            (Some(shard), Some(first)) => shard.contains(first),
            _ => true,
        })
        .flatten()
        .collect();
    let failed = discovery
        .failed
        .iter()
        .filter(|(entry, _)| {
            shard.is_none_or(|shard| {
                crate::shard::of_name(&entry.namespace.to_string()) % shard.count == shard.index
            })
        })
        .flat_map(|(entry, error)| {
            destinations
                .iter()
                .map(|destination| ns::failed_result(entry, error.clone(), destination))
        })
        .collect();
    for destination in &destinations {
        let gone = ns::gone(client, &options.namespaces, destination, shard, &discovery).await;
        for line in gone {
            say_err(format!("ferry: warning: {}", escape::one_line(&line)));
        }
    }
    Namespaced {
        jobs,
        discovery,
        failed,
    }
}

fn read_accounts(path: &Path) -> (Vec<HostSettings>, Vec<InputError>) {
    let name = path.display().to_string();
    let text = std::fs::read(path)
        .map_err(|source| InputError::Read {
            file: name.clone(),
            source,
        })
        .and_then(|bytes| input::decode_text(&name, bytes));
    match text {
        Ok(text) => input::parse_accounts_json(&name, &text),
        Err(error) => (Vec::new(), vec![error]),
    }
}
