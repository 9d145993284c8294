//! A hand-written `--name value` parser: four small binaries do not justify
//! a command-line crate in a workspace CI builds from scratch.

use std::collections::HashMap;
use std::str::FromStr;

use anyhow::{Context, anyhow};

/// Positional arguments and `--name value` options.
pub struct Args {
    positional: Vec<String>,
    options: HashMap<String, String>,
}

impl Args {
    pub fn from_env() -> anyhow::Result<Self> {
        Self::parse(std::env::args().skip(1))
    }

    pub fn parse(args: impl IntoIterator<Item = String>) -> anyhow::Result<Self> {
        let mut positional = Vec::new();
        let mut options = HashMap::new();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match arg.strip_prefix("--") {
                Some(name) => {
                    let value = args
                        .next()
                        .ok_or_else(|| anyhow!("--{name} needs a value"))?;
                    options.insert(name.to_owned(), value);
                }
                None => positional.push(arg),
            }
        }
        Ok(Self {
            positional,
            options,
        })
    }

    /// The `index`th positional argument, described as `what` in errors.
    pub fn positional(&self, index: usize, what: &str) -> anyhow::Result<&str> {
        self.positional
            .get(index)
            .map(String::as_str)
            .ok_or_else(|| anyhow!("missing argument: {what}"))
    }

    /// The positional arguments from the `index`th on.
    pub fn positionals_from(&self, index: usize) -> &[String] {
        self.positional.get(index..).unwrap_or_default()
    }

    pub fn required<T: FromStr>(&self, name: &str) -> anyhow::Result<T>
    where
        T::Err: std::error::Error + Send + Sync + 'static,
    {
        let value = self
            .options
            .get(name)
            .ok_or_else(|| anyhow!("missing option --{name}"))?;
        value.parse().with_context(|| format!("--{name} {value}"))
    }

    pub fn or<T: FromStr>(&self, name: &str, default: T) -> anyhow::Result<T>
    where
        T::Err: std::error::Error + Send + Sync + 'static,
    {
        match self.options.get(name) {
            Some(_) => self.required(name),
            None => Ok(default),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Args {
        Args::parse(line.split_whitespace().map(String::from)).unwrap()
    }

    #[test]
    fn options_and_positionals_mix_in_any_order() {
        let a = args("--rate 100 http://x --duration 2");
        assert_eq!(a.positional(0, "url").unwrap(), "http://x");
        assert_eq!(a.required::<u32>("rate").unwrap(), 100);
        assert_eq!(a.or::<u32>("duration", 5).unwrap(), 2);
        assert_eq!(a.or::<u32>("connections", 5).unwrap(), 5);
    }

    #[test]
    fn a_missing_value_is_an_error() {
        assert!(Args::parse(["--rate".to_owned()]).is_err());
        assert!(args("x").required::<u32>("rate").is_err());
    }
}
