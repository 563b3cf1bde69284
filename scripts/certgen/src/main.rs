//! certgen: generates the test PKIs in certs/, one folder per scenario.
//!
//! Usage: `certgen <output-dir>` (scripts/gen-certs runs it with `certs`).
//!
//! Every run makes fresh keys, so all files change; the verdicts do not, because every
//! date is fixed. Each scenario folder holds chain.pem (as the server sends it),
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
    let mut args = std::env::args_os().skip(1);
    let (Some(out_dir), None) = (args.next(), args.next()) else {
        eprintln!("usage: certgen <output-dir>");
        return ExitCode::from(2);
    };
    match run(Path::new(&out_dir)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("certgen: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(out_dir: &Path) -> Result<()> {
    let lab = LabPki::generate()?;
    let scenarios = scenarios::all(&lab)?;

    fs::create_dir_all(out_dir)?;
    write(&out_dir.join("lab-root.pem"), &lab.root.pem())?;
    for scenario in &scenarios {
        write_scenario(out_dir, scenario)?;
    }
    write(&out_dir.join("scenarios.json"), &index_json(&scenarios)?)?;
    write(&out_dir.join("README.md"), &readme(&scenarios))?;
    println!(
        "certgen: wrote {} scenarios to {}",
        scenarios.len(),
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
}

fn index_json(scenarios: &[Scenario]) -> Result<String> {
    let entries: Vec<IndexEntry> = scenarios
        .iter()
        .map(|scenario| IndexEntry {
            name: scenario.name,
            description: scenario.description,
            host: scenario.host,
            expected: scenario.expected.to_string(),
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
        table.push_str(&format!(
            "| {} | [`{}`]({}/) | {} | `{}` | `{}` | {} |\n",
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
