//! Layered configuration: `base.yaml`, then `<environment>.yaml`, then
//! `APP_SECTION__KEY` environment variables, deserialised into typed structs.
//!
//! The environment is named by `APP_ENVIRONMENT` (`local` when unset) and the
//! directory by `APP_CONFIG_DIR` (the binary's default when unset). Unknown
//! keys are errors, so a typo in a file or a variable stops the process before
//! it binds a port instead of being silently ignored.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Yaml};
use serde::de::DeserializeOwned;

/// Variables that steer loading itself and are therefore not settings.
const LOADER_VARS: &[&str] = &["environment", "config_dir"];

/// Why configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("APP_ENVIRONMENT={0:?} has no file {1}")]
    UnknownEnvironment(String, PathBuf),
    #[error("invalid configuration: {0}")]
    Invalid(#[from] Box<figment::Error>),
}

/// Loads settings for a binary whose config files live in `default_dir`
/// unless `APP_CONFIG_DIR` says otherwise.
pub fn load<T: DeserializeOwned>(default_dir: impl AsRef<Path>) -> Result<T, ConfigError> {
    let dir = std::env::var_os("APP_CONFIG_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| default_dir.as_ref().to_path_buf());
    let environment = std::env::var("APP_ENVIRONMENT").unwrap_or_else(|_| "local".into());
    let figment =
        files(&dir, &environment)?.merge(Env::prefixed("APP_").ignore(LOADER_VARS).split("__"));
    extract(figment)
}

/// Loads the files only, without looking at the process environment. Tests use
/// this and then change fields of the returned struct.
pub fn load_files<T: DeserializeOwned>(
    dir: impl AsRef<Path>,
    environment: &str,
) -> Result<T, ConfigError> {
    extract(files(dir.as_ref(), environment)?)
}

fn files(dir: &Path, environment: &str) -> Result<Figment, ConfigError> {
    let base = dir.join("base.yaml");
    if !base.is_file() {
        return Err(ConfigError::MissingFile(base));
    }
    let overlay = dir.join(format!("{environment}.yaml"));
    if !overlay.is_file() {
        return Err(ConfigError::UnknownEnvironment(environment.into(), overlay));
    }
    Ok(Figment::new()
        .merge(Yaml::file(base))
        .merge(Yaml::file(overlay)))
}

fn extract<T: DeserializeOwned>(figment: Figment) -> Result<T, ConfigError> {
    figment
        .extract()
        .map_err(|e| ConfigError::Invalid(Box::new(e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Settings {
        port: u16,
        #[serde(default)]
        name: String,
    }

    fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, body) in files {
            std::fs::write(dir.path().join(name), body).unwrap();
        }
        dir
    }

    #[test]
    fn the_environment_file_overrides_the_base_file() {
        let dir = dir_with(&[
            ("base.yaml", "port: 1\nname: base\n"),
            ("local.yaml", "port: 2\n"),
        ]);
        let s: Settings = load_files(dir.path(), "local").unwrap();
        assert_eq!(
            s,
            Settings {
                port: 2,
                name: "base".into()
            }
        );
    }

    #[test]
    fn a_missing_environment_file_is_an_error_naming_it() {
        let dir = dir_with(&[("base.yaml", "port: 1\n")]);
        let err = load_files::<Settings>(dir.path(), "prod").unwrap_err();
        assert!(err.to_string().contains("prod.yaml"), "{err}");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let dir = dir_with(&[("base.yaml", "port: 1\nprot: 2\n"), ("local.yaml", "")]);
        let err = load_files::<Settings>(dir.path(), "local").unwrap_err();
        assert!(err.to_string().contains("prot"), "{err}");
    }

    #[test]
    fn a_wrongly_typed_value_is_rejected() {
        let dir = dir_with(&[("base.yaml", "port: lots\n"), ("local.yaml", "")]);
        assert!(load_files::<Settings>(dir.path(), "local").is_err());
    }
}
