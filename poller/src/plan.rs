//! What `poller run` is asked to run: commands and their names, from the
//! arguments or from a Procfile, checked before anything starts.

use std::fmt;
use std::path::Path;

/// One command to run, with the name its lines are prefixed with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub name: String,
    pub command: String,
}

/// Why the commands cannot be run (a usage error: status 2).
#[derive(Debug, PartialEq, Eq)]
pub enum PlanError {
    NoCommand,
    EmptyCommand(usize),
    NamesLength { names: usize, commands: usize },
    EmptyName(usize),
    Procfile(String),
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::NoCommand => {
                write!(f, "no command to run (give CMD arguments or --procfile)")
            }
            PlanError::EmptyCommand(i) => write!(f, "command {} is empty", i + 1),
            PlanError::NamesLength { names, commands } => write!(
                f,
                "--names has {names} name{} for {commands} command{}",
                plural(*names),
                plural(*commands)
            ),
            PlanError::EmptyName(i) => write!(f, "name {} in --names is empty", i + 1),
            PlanError::Procfile(why) => f.write_str(why),
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The jobs for CMD arguments and an optional `--names` list.
pub fn from_args(commands: &[String], names: Option<&[String]>) -> Result<Vec<Job>, PlanError> {
    if commands.is_empty() {
        return Err(PlanError::NoCommand);
    }
    if let Some(i) = commands.iter().position(|c| c.trim().is_empty()) {
        return Err(PlanError::EmptyCommand(i));
    }
    let names = match names {
        Some(names) if names.len() != commands.len() => {
            return Err(PlanError::NamesLength {
                names: names.len(),
                commands: commands.len(),
            });
        }
        Some(names) => {
            if let Some(i) = names.iter().position(|n| n.is_empty()) {
                return Err(PlanError::EmptyName(i));
            }
            names.to_vec()
        }
        None => default_names(commands),
    };
    Ok(names
        .into_iter()
        .zip(commands)
        .map(|(name, command)| Job {
            name,
            command: command.clone(),
        })
        .collect())
}

/// Each command's first word, with `#2`, `#3` added to the second and third
/// command of the same first word.
fn default_names(commands: &[String]) -> Vec<String> {
    let mut seen: Vec<(&str, usize)> = Vec::new();
    commands
        .iter()
        .map(|command| {
            let word = command.split_whitespace().next().unwrap_or_default();
            match seen.iter_mut().find(|(w, _)| *w == word) {
                Some((_, count)) => {
                    *count += 1;
                    format!("{word}#{count}")
                }
                None => {
                    seen.push((word, 1));
                    word.to_owned()
                }
            }
        })
        .collect()
}

/// The jobs of the Procfile at `path`.
pub fn from_procfile(path: &Path) -> Result<Vec<Job>, PlanError> {
    let text = std::fs::read(path).map_err(|e| {
        PlanError::Procfile(format!("cannot read Procfile {}: {e}", path.display()))
    })?;
    let text = String::from_utf8(text)
        .map_err(|_| PlanError::Procfile(format!("Procfile {} is not UTF-8", path.display())))?;
    parse_procfile(&text)
        .map_err(|why| PlanError::Procfile(format!("Procfile {}: {why}", path.display())))
}

/// `name: command` lines; blank lines and `#` comments skipped. A name is
/// letters, digits, `_` and `-` (foreman's rule), and appears once.
fn parse_procfile(text: &str) -> Result<Vec<Job>, String> {
    let mut jobs: Vec<Job> = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let malformed = |why: &str| format!("line {}: {why}: {line:?}", number + 1);
        let Some((name, command)) = line.split_once(':') else {
            return Err(malformed("not `name: command`"));
        };
        let (name, command) = (name.trim(), command.trim());
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c))
        {
            return Err(malformed("a name is letters, digits, _ and -"));
        }
        if command.is_empty() {
            return Err(malformed("no command"));
        }
        if jobs.iter().any(|job| job.name == name) {
            return Err(malformed("the name appears twice"));
        }
        jobs.push(Job {
            name: name.to_owned(),
            command: command.to_owned(),
        });
    }
    if jobs.is_empty() {
        return Err("no `name: command` line".into());
    }
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn names(jobs: &[Job]) -> Vec<&str> {
        jobs.iter().map(|j| j.name.as_str()).collect()
    }

    #[test]
    fn default_names_are_first_words_with_repeats_numbered() {
        let jobs = from_args(
            &strings(&["sleep 1", "echo hi", "sleep 2", "  sleep 3"]),
            None,
        );
        assert_eq!(
            names(&jobs.unwrap()),
            ["sleep", "echo", "sleep#2", "sleep#3"]
        );
    }

    #[test]
    fn given_names_must_match_the_commands() {
        let commands = strings(&["a", "b"]);
        let two = strings(&["x", "y"]);
        assert_eq!(
            names(&from_args(&commands, Some(&two)).unwrap()),
            ["x", "y"]
        );
        let one = strings(&["x"]);
        assert_eq!(
            from_args(&commands, Some(&one)),
            Err(PlanError::NamesLength {
                names: 1,
                commands: 2
            })
        );
        let blank = strings(&["x", ""]);
        assert_eq!(
            from_args(&commands, Some(&blank)),
            Err(PlanError::EmptyName(1))
        );
    }

    #[test]
    fn no_command_or_an_empty_one_is_refused() {
        assert_eq!(from_args(&[], None), Err(PlanError::NoCommand));
        assert_eq!(
            from_args(&strings(&["true", " "]), None),
            Err(PlanError::EmptyCommand(1))
        );
    }

    #[test]
    fn a_procfile_skips_blanks_and_comments() {
        let jobs = parse_procfile(
            "# web things\n\nweb: python -m http.server 8000\nworker:  sh -c 'a: b'\n",
        );
        let jobs = jobs.unwrap();
        assert_eq!(names(&jobs), ["web", "worker"]);
        assert_eq!(jobs[1].command, "sh -c 'a: b'");
    }

    #[test]
    fn a_malformed_procfile_is_refused() {
        for bad in [
            "web python",
            "web:",
            ": cmd",
            "a b: cmd",
            "web: a\nweb: b",
            "",
            "# only\n",
        ] {
            assert!(parse_procfile(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
