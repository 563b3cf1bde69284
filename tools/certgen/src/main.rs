//! certgen: generates the test PKIs in certs/, one folder per scenario.
//!
//! Usage: `certgen <output-dir> [SCENARIO...]` (scripts/gen-certs runs it with `certs`).
//!
//! Every run makes fresh keys, so all files change; the verdicts do not, because every
//! date is fixed. Naming scenarios rewrites only their folders (plus README.md and
//! scenarios.json, whose text does not depend on the keys), so adding a scenario does
//! not churn every committed PEM file; such scenarios must not issue under the lab root,
//! whose file is then left as it is. Each scenario folder holds chain.pem (as the server sends it),
//! key.pem, roots.pem, host, description and expected, and where the scenario needs them
//! missing-issuer.pem, system-bundle.pem, trust (`cacert` or `system`; the older
//! scenarios have none, which means cacert) and hostile; see certs/README.md.
//! scenarios.json states the same facts plus what quicprobe's diagnosis should say
//! (fault kind, certainty, alternatives, corrected chain), with and without --aia-fetch.

mod client_auth;
mod der;
mod diagnosis;
mod pki;
mod scenarios;

use std::{fs, path::Path, process::ExitCode};

use serde::Serialize;

use diagnosis::Diagnosis;
use pki::Result;
use scenarios::{Expected, LabPki, Scenario, TrustSource};

/// The README's hand-written prose; the scenario table is generated into it so the
/// catalogue can never drift from the files.
const README_TEMPLATE: &str = include_str!("../readme-template.md");
const README_TABLE_MARKER: &str = "<!-- scenario table -->";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(out_dir) = args.next() else {
        eprintln!("usage: certgen <output-dir> [SCENARIO...]");
        return ExitCode::from(2);
    };
    let only: Vec<String> = args.collect();
    match run(Path::new(&out_dir), &only) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("certgen: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(out_dir: &Path, only: &[String]) -> Result<()> {
    let lab = LabPki::generate()?;
    let scenarios = scenarios::all(&lab)?;
    if let Some(unknown) = only.iter().find(|name| {
        name.as_str() != client_auth::FOLDER && !scenarios.iter().any(|s| s.name == name.as_str())
    }) {
        return Err(format!("no scenario named {unknown}").into());
    }

    fs::create_dir_all(out_dir)?;
    if only.is_empty() {
        write(&out_dir.join("lab-root.pem"), &lab.root.pem())?;
    }
    for scenario in &scenarios {
        if only.is_empty() || only.iter().any(|name| name == scenario.name) {
            write_scenario(out_dir, scenario)?;
        }
    }
    if only.is_empty() || only.iter().any(|name| name == client_auth::FOLDER) {
        write_client_auth(out_dir)?;
    }
    write(&out_dir.join("scenarios.json"), &index_json(&scenarios)?)?;
    write(&out_dir.join("README.md"), &readme(&scenarios))?;
    let written = if only.is_empty() {
        scenarios.len()
    } else {
        only.len()
    };
    println!(
        "certgen: wrote {written} scenarios to {}",
        out_dir.display()
    );
    Ok(())
}

/// Writes one scenario folder from scratch, so files of an earlier layout never linger.
fn write_scenario(out_dir: &Path, scenario: &Scenario) -> Result<()> {
    let dir = out_dir.join(scenario.name);
    if dir.exists() {
        fs::remove_dir_all(&dir)?;
    }
    fs::create_dir_all(&dir)?;

    write(&dir.join("chain.pem"), &scenario.chain.concat())?;
    write(&dir.join("key.pem"), &scenario.key_pem)?;
    write(&dir.join("roots.pem"), &scenario.roots.concat())?;
    write(&dir.join("host"), &line(scenario.host))?;
    write(&dir.join("description"), &line(scenario.description))?;
    write(&dir.join("expected"), &line(&scenario.expected.to_string()))?;
    for (name, contents) in &scenario.extra_files {
        write(&dir.join(name), contents)?;
    }
    if let Some(source) = scenario.trust_source {
        write(&dir.join("trust"), &line(&source.to_string()))?;
    }
    if let Some(bundle) = &scenario.system_bundle {
        write(&dir.join("system-bundle.pem"), &bundle.concat())?;
    }
    if let Some(why) = scenario.hostile {
        write(&dir.join("hostile"), &line(why))?;
    }
    Ok(())
}

/// Writes certs/client-auth/ from scratch: the client certificates, not a scenario.
fn write_client_auth(out_dir: &Path) -> Result<()> {
    let dir = out_dir.join(client_auth::FOLDER);
    if dir.exists() {
        fs::remove_dir_all(&dir)?;
    }
    fs::create_dir_all(&dir)?;
    let set = client_auth::ClientAuthSet::generate()?;
    for (name, contents) in &set.text_files {
        write(&dir.join(name), contents)?;
    }
    for (name, bytes) in &set.binary_files {
        let path = dir.join(name);
        fs::write(&path, bytes).map_err(|err| format!("{}: {err}", path.display()))?;
    }
    Ok(())
}

/// One-line files end with exactly one newline; readers trim it.
fn line(text: &str) -> String {
    assert!(
        !text.contains('\n'),
        "one-line file with a newline: {text:?}"
    );
    format!("{text}\n")
}

/// fs::write with the path in the error, which std leaves out.
fn write(path: &Path, contents: &str) -> Result<()> {
    fs::write(path, contents).map_err(|err| format!("{}: {err}", path.display()).into())
}

/// One entry of certs/scenarios.json: the same facts as the one-line files, for
/// tools that would rather read one JSON document than walk folders.
#[derive(Serialize)]
struct IndexEntry<'a> {
    name: &'a str,
    description: &'a str,
    host: &'a str,
    /// Exactly the contents of the `expected` file.
    expected: String,
    /// A pathological input for the hostile-server tests; the `hostile` file says why.
    hostile: bool,
    /// The `trust` file, `cacert` when there is none.
    trust: TrustSource,
    /// Whether the folder has a `system-bundle.pem`.
    system_bundle: bool,
    /// What quicprobe's diagnosis should say.
    diagnosis: &'a Diagnosis,
    /// What it should say with --aia-fetch, only where that changes the answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    diagnosis_with_aia_fetch: Option<&'a Diagnosis>,
}

fn index_json(scenarios: &[Scenario]) -> Result<String> {
    let entries: Vec<IndexEntry> = scenarios
        .iter()
        .map(|scenario| IndexEntry {
            name: scenario.name,
            description: scenario.description,
            host: scenario.host,
            expected: scenario.expected.to_string(),
            hostile: scenario.hostile.is_some(),
            trust: scenario.trust_source.unwrap_or(TrustSource::Cacert),
            system_bundle: scenario.system_bundle.is_some(),
            diagnosis: &scenario.diagnosis,
            diagnosis_with_aia_fetch: scenario.diagnosis_with_aia_fetch.as_ref(),
        })
        .collect();
    Ok(serde_json::to_string_pretty(&entries)? + "\n")
}

fn readme(scenarios: &[Scenario]) -> String {
    assert!(
        README_TEMPLATE.contains(README_TABLE_MARKER),
        "readme-template.md lost its table marker"
    );
    README_TEMPLATE.replace(README_TABLE_MARKER, scenario_table(scenarios).trim_end())
}

/// The Markdown catalogue: name, description, name to dial, expected verdict and
/// diagnosis.
fn scenario_table(scenarios: &[Scenario]) -> String {
    let mut table = String::from(
        "| # | Scenario | What the server sends / what is wrong | Dial | Expected | Meaning | Diagnosis |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for (number, scenario) in scenarios.iter().enumerate() {
        let meaning = match scenario.expected {
            Expected::Accepted => "verifies".to_string(),
            Expected::Rejected { error, depth } => {
                format!("{} (at depth {depth})", error.error_string())
            }
        };
        let mark = if scenario.hostile.is_some() {
            " **hostile**"
        } else {
            ""
        };
        table.push_str(&format!(
            "| {} | [`{}`]({}/){mark} | {} | `{}` | `{}` | {} | {} |\n",
            number + 1,
            scenario.name,
            scenario.name,
            scenario.description.replace('|', "\\|"),
            scenario.host,
            scenario.expected,
            meaning,
            diagnosis_cell(scenario),
        ));
    }
    table
}

/// The fault kind, marked when the evidence fits other kinds too, and the kind with
/// --aia-fetch when fetching changes it or makes it certain.
fn diagnosis_cell(scenario: &Scenario) -> String {
    let describe = |diagnosis: &Diagnosis| {
        let kind = format!("`{}`", diagnosis.kind.json_name());
        if diagnosis.certain {
            kind
        } else {
            format!("{kind} (not certain)")
        }
    };
    let mut cell = describe(&scenario.diagnosis);
    if let Some(with_fetch) = &scenario.diagnosis_with_aia_fetch {
        cell.push_str(&format!("; with `--aia-fetch`: {}", describe(with_fetch)));
    }
    cell
}
