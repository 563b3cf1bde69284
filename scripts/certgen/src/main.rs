//! certgen: generates the test PKIs in certs/, one folder per scenario.
//!
//! Usage: `certgen <output-dir> [SCENARIO...]` (scripts/gen-certs runs it with `certs`).
//!
//! Every run makes fresh keys, so all files change; the verdicts do not, because every
//! date is fixed. Naming scenarios rewrites only their folders (plus README.md and
//! scenarios.json, whose text does not depend on the keys), so adding a scenario does
//! not churn every committed PEM file; such scenarios must not issue under the lab root,
//! whose file is then left as it is. Each scenario folder holds chain.pem (as the server sends it),
//! key.pem, roots.pem, host, description and expected; see certs/README.md.

mod der;
mod pki;
mod scenarios;

use std::{fs, path::Path, process::ExitCode};

use serde::Serialize;

use pki::Result;
use scenarios::{Expected, LabPki, Scenario};

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
    if let Some(unknown) = only
        .iter()
        .find(|name| !scenarios.iter().any(|s| s.name == name.as_str()))
    {
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
    if let Some(why) = scenario.hostile {
        write(&dir.join("hostile"), &line(why))?;
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

/// The Markdown catalogue: name, description, name to dial, expected verdict.
fn scenario_table(scenarios: &[Scenario]) -> String {
    let mut table = String::from(
        "| # | Scenario | What the server sends / what is wrong | Dial | Expected | Meaning |\n\
         |---|---|---|---|---|---|\n",
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
            "| {} | [`{}`]({}/){mark} | {} | `{}` | `{}` | {} |\n",
            number + 1,
            scenario.name,
            scenario.name,
            scenario.description.replace('|', "\\|"),
            scenario.host,
            scenario.expected,
            meaning,
        ));
    }
    table
}
