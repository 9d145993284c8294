//! Layered configuration: `base.yaml`, then `<environment>.yaml`, then
//! environment variables, deserialised into typed structs.
//!
//! Every binary reads two families of variables, both split on `__`:
//!
//! - `APP_PLATFORM__<SECTION>__<KEY>` is shared: it lands in `platform.*` of
//!   every binary (`APP_PLATFORM__DISCOVERY__ENDPOINTS='["http://etcd:2379"]'`);
//! - `APP_<NAME>__<SECTION>__<KEY>` is for the binary called `name` only and
//!   lands at its root, overriding the shared ones
//!   (`APP_GATEWAY__AUTH__JWT_SECRET`, `APP_CONTENT__DATABASE__URL`,
//!   `APP_CONTENT__PLATFORM__GRPC__PORT`).
//!
//! So one environment can hold the settings of every binary of a stack: a
//! variable scoped to another binary is never read, hence never this binary's
//! error. The environment is named by `APP_ENVIRONMENT` (`local` when unset)
//! and the directory by `APP_CONFIG_DIR` (the binary's default when unset).
//! Unknown keys are errors, so a typo in a file or a variable stops the
//! process before it binds a port instead of being silently ignored.
//!
//! Unscoped names from before the per-binary scheme (`APP_DATABASE__URL`,
//! `APP_ADMIN_TOKEN`, the gateway's `APP_DISCOVERY__ENDPOINTS`) would now be
//! ignored silently; instead, one whose first segment is a top-level section
//! of this binary (or of `platform`) stops start-up with the name to use. A
//! first segment naming a binary of [`BINARIES`] is always a scope, never an
//! old name.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Yaml};
use serde::de::DeserializeOwned;
use serde_aux::serde_introspection::serde_introspect;

use crate::PlatformSettings;

/// Variables that steer loading itself and are therefore not settings.
const LOADER_VARS: &[&str] = &["environment", "config_dir"];

/// The section shared by every binary, and the scope of its variables.
const PLATFORM: &str = "platform";

/// The binaries of the workspace. Their names are scopes (`APP_USER__…`), so
/// a binary with a section of the same name never takes another binary's
/// variable for an old unscoped one of its own. A new binary adds its name.
// One name a line, so `make new-service` adds and removes exactly one.
#[rustfmt::skip]
pub const BINARIES: &[&str] = &[
    "gateway",
    "user",
    "content",
    "comment",
    // new-service: binaries
];

/// Why configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("APP_ENVIRONMENT={0:?} has no file {1}")]
    UnknownEnvironment(String, PathBuf),
    #[error("invalid configuration: {0}")]
    Invalid(#[from] Box<figment::Error>),
    #[error("environment variables are scoped per binary now: {}", renamed(.0))]
    Renamed(Vec<Renamed>),
}

/// An unscoped variable from before the per-binary scheme and its new name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Renamed {
    pub old: String,
    pub new: String,
}

fn renamed(list: &[Renamed]) -> String {
    list.iter()
        .map(|r| format!("{} is not read, use {}", r.old, r.new))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Loads the settings of the binary called `name` (`"gateway"`, `"user"`, …)
/// whose config files live in `default_dir` unless `APP_CONFIG_DIR` says
/// otherwise.
pub fn load<T: DeserializeOwned>(
    name: &str,
    default_dir: impl AsRef<Path>,
) -> Result<T, ConfigError> {
    let dir = std::env::var_os("APP_CONFIG_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| default_dir.as_ref().to_path_buf());
    let environment = std::env::var("APP_ENVIRONMENT").unwrap_or_else(|_| "local".into());
    let sections = serde_introspect::<T>();
    let old = old_names(name, sections);
    if !old.is_empty() {
        return Err(ConfigError::Renamed(old));
    }
    let mut figment = files(&dir, &environment)?;
    if sections.contains(&PLATFORM) {
        figment = figment.merge(
            Env::prefixed("APP_PLATFORM__")
                .split("__")
                .map(|key| format!("{PLATFORM}.{key}").into()),
        );
    }
    let own = Env::prefixed(&format!("APP_{}__", name.to_ascii_uppercase())).split("__");
    extract(figment.merge(own))
}

/// The unscoped `APP_*` variables that name a section of this binary, with
/// the names that replace them.
fn old_names(name: &str, sections: &[&str]) -> Vec<Renamed> {
    let platform_sections = if sections.contains(&PLATFORM) {
        serde_introspect::<PlatformSettings>()
    } else {
        &[]
    };
    let mut old: Vec<Renamed> = Env::prefixed("APP_")
        .iter()
        .filter_map(|(key, _)| {
            let key = key.as_str();
            let first = key.split("__").next().unwrap_or(key);
            let scope = if first == PLATFORM
                || first.eq_ignore_ascii_case(name)
                || BINARIES.contains(&first)
                || LOADER_VARS.contains(&first)
            {
                return None;
            } else if sections.contains(&first) {
                name.to_ascii_uppercase()
            } else if platform_sections.contains(&first) {
                PLATFORM.to_ascii_uppercase()
            } else {
                return None;
            };
            let key = key.to_ascii_uppercase();
            Some(Renamed {
                old: format!("APP_{key}"),
                new: format!("APP_{scope}__{key}"),
            })
        })
        .collect();
    old.sort_by(|a, b| a.old.cmp(&b.old));
    old
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

    /// A binary's settings as the loader sees them: a shared platform
    /// section beside sections of its own.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Binary {
        #[serde(default)]
        platform: PlatformSettings,
        port: u16,
        #[serde(default)]
        name: String,
    }

    /// Runs `f` with the config files of [`Binary`] and only the given
    /// variables in the environment (restored afterwards; Jail serialises
    /// the tests that change it).
    // The closure's Result<(), figment::Error> is Jail's signature, not ours.
    #[allow(clippy::result_large_err)]
    fn with_env(vars: &[(&str, &str)], f: impl FnOnce(&Path)) {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file(
                "base.yaml",
                "port: 1\nplatform:\n  admin:\n    port: 9000\n",
            )?;
            jail.create_file("local.yaml", "")?;
            for (key, value) in vars {
                jail.set_env(key, value);
            }
            f(jail.directory());
            Ok(())
        });
    }

    #[test]
    fn a_shared_platform_variable_applies_to_every_binary() {
        with_env(&[("APP_PLATFORM__ADMIN__PORT", "7001")], |dir| {
            for name in ["content", "gateway"] {
                let s: Binary = load(name, dir).unwrap();
                assert_eq!(s.platform.admin.port, 7001, "{name}");
            }
        });
    }

    #[test]
    fn a_variable_scoped_to_this_binary_overrides_the_shared_one() {
        let vars = [
            ("APP_PLATFORM__ADMIN__PORT", "7001"),
            ("APP_CONTENT__PLATFORM__ADMIN__PORT", "7002"),
            ("APP_CONTENT__NAME", "mine"),
        ];
        with_env(&vars, |dir| {
            let content: Binary = load("content", dir).unwrap();
            assert_eq!(content.platform.admin.port, 7002);
            assert_eq!(content.name, "mine");
            let user: Binary = load("user", dir).unwrap();
            assert_eq!(user.platform.admin.port, 7001);
            assert_eq!(user.name, "");
        });
    }

    #[test]
    fn a_variable_scoped_to_another_binary_is_ignored() {
        let vars = [
            ("APP_GATEWAY__ADMIN_TOKEN", "secret"),
            ("APP_USER__NOT_A_SETTING", "1"),
            ("APP_USER__PLATFORM__ADMIN__PORT", "7003"),
        ];
        with_env(&vars, |dir| {
            let s: Binary = load("content", dir).unwrap();
            assert_eq!((s.platform.admin.port, s.port), (9000, 1));
        });
    }

    #[test]
    fn an_old_unscoped_variable_of_this_binary_fails_naming_the_new_one() {
        with_env(&[("APP_PORT", "5")], |dir| {
            let err = load::<Binary>("content", dir).unwrap_err();
            assert!(err.to_string().contains("use APP_CONTENT__PORT"), "{err}");
        });
        with_env(&[("APP_DISCOVERY__ENDPOINTS", "[]")], |dir| {
            let err = load::<Binary>("gateway", dir).unwrap_err();
            let hint = "use APP_PLATFORM__DISCOVERY__ENDPOINTS";
            assert!(err.to_string().contains(hint), "{err}");
        });
    }

    #[test]
    fn an_old_unscoped_variable_of_another_binary_is_ignored() {
        with_env(&[("APP_DATABASE__URL", "sqlite://x.db")], |dir| {
            assert!(load::<Binary>("gateway", dir).is_ok());
        });
    }

    #[test]
    fn a_section_named_like_another_binary_is_a_scope_not_an_old_name() {
        #[derive(Debug, Deserialize)]
        struct Gateway {
            #[serde(default)]
            user: Option<String>,
            port: u16,
        }
        with_env(&[("APP_USER__CACHE__REDIS_URL", "redis://x")], |dir| {
            let gateway: Gateway = load("gateway", dir).unwrap();
            assert_eq!((gateway.user, gateway.port), (None, 1));
        });
    }

    #[test]
    fn an_unknown_key_under_this_binary_scope_fails() {
        with_env(&[("APP_CONTENT__PROT", "2")], |dir| {
            let err = load::<Binary>("content", dir).unwrap_err();
            assert!(err.to_string().contains("prot"), "{err}");
        });
    }

    #[test]
    fn the_loader_variables_are_not_settings() {
        with_env(&[("APP_ENVIRONMENT", "local")], |dir| {
            assert!(load::<Binary>("content", dir).is_ok());
        });
    }

    #[test]
    fn a_wrongly_typed_value_is_rejected() {
        let dir = dir_with(&[("base.yaml", "port: lots\n"), ("local.yaml", "")]);
        assert!(load_files::<Settings>(dir.path(), "local").is_err());
    }
}
