//! The clients Watcher's services would build from a configuration: MAAS
//! when `maas-url` is set, Ironic otherwise, and Nova; with the Keystone,
//! `[ironic_client]` and `[nova_client]` settings of watcher.conf and its
//! drop-ins as the decision engine reads them, and the proxies Watcher's
//! services would go through ([`Reach`]). The protocol clients take plain
//! settings; this is where the charm's configuration becomes them.

use std::path::Path;
use std::time::Duration;

use crate::clients::http::{ClientBuildError, HttpOptions};
use crate::clients::maas::{ClientOptions, MaasClient};
use crate::clients::openstack::ironic::{IronicClient, IronicRetry};
use crate::clients::openstack::keystone::{KeystoneAuth, KeystoneError};
use crate::clients::openstack::nova::{NovaClient, NovaOptions, NovaSettings};
use crate::clients::openstack::service::{OpenStackError, Service};
use crate::clients::proxy::Proxies;
use crate::config::{CharmConfig, MaasSettings};
use crate::host::system::System;
use crate::metal::{MetalClient, MetalError};
use crate::ops::Error;
use crate::watcher::effective::Layout;

/// How long an Ironic request may take (Watcher's client has no timeout).
const IRONIC_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the proxies of Watcher's Keystone, Ironic and Nova clients come
/// from when Watcher's main service is not a unit on this machine (or
/// systemd cannot be asked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elsewhere {
    /// No proxy. A hook's or an action's own environment is Juju's (the
    /// model's legacy `http-proxy` puts `http_proxy` there), not Watcher's.
    Direct,
    /// The command's own environment, read as the `openstack` CLI
    /// (keystoneauth, requests) reads it: the CLI run where Watcher is not.
    OwnEnvironment,
}

impl Elsewhere {
    /// The command line's rule: its own environment, unless it runs inside
    /// a Juju hook or action (whose environment is Juju's).
    pub fn for_command(in_hook_context: bool) -> Elsewhere {
        if in_hook_context {
            Elsewhere::Direct
        } else {
            Elsewhere::OwnEnvironment
        }
    }
}

/// How Watcher's services reach the services they call.
///
/// MAAS: directly, whatever the environment says. python-libmaas (0.6.8,
/// `maas/client/bones/__init__.py` `CallAPI.dispatch`, and
/// `bones/helpers.py`) opens each `aiohttp.ClientSession(connector=...)`
/// without `trust_env`, and aiohttp's `ClientSession` defaults to
/// `trust_env=False` and reads `*_proxy` only when it is true (aiohttp
/// 3.9.1, Ubuntu 24.04's, and 3.14.5: `client.py`). So [`maas_options`]
/// never has a proxy.
///
/// Keystone, Ironic and Nova: keystoneauth's `requests` session trusts the
/// environment (`trust_env` is true): the proxy variables of the
/// environment the services run with, as systemd gives it, read as
/// requests reads them ([`Proxies`]).
#[derive(Debug, Clone, Default)]
pub struct Reach {
    openstack: Proxies,
}

impl Reach {
    /// No proxy anywhere.
    pub fn direct() -> Reach {
        Reach::default()
    }

    /// What Watcher's services have, for the clients `config` needs: when
    /// Keystone is asked (Ironic is the backend, or `nova`), the proxies of
    /// the environment systemd starts the first of watcher-services with
    /// (the decision engine, which lists the nodes and asks Nova); when it
    /// is not, [`Reach::direct`] without asking systemd.
    pub fn of_watcher(config: &CharmConfig, nova: bool, system: &dyn System, elsewhere: Elsewhere) -> Reach {
        if config.maas.is_some() && !nova {
            return Reach::direct();
        }
        let service = config.services.first().map_or(crate::config::DEFAULT_PROGRAM, String::as_str);
        Reach::from_environment(system.service_environment(service), elsewhere, own_environment)
    }

    /// The service's environment; where there is none, `elsewhere`'s.
    fn from_environment(
        service: Result<Option<Vec<(String, String)>>, String>,
        elsewhere: Elsewhere,
        own: fn() -> Vec<(String, String)>,
    ) -> Reach {
        let vars = match (service, elsewhere) {
            (Ok(Some(vars)), _) => vars,
            (_, Elsewhere::Direct) => return Reach::direct(),
            (_, Elsewhere::OwnEnvironment) => own(),
        };
        Reach { openstack: Proxies::from_environment(&vars) }
    }

    /// HTTP options for a Keystone, Ironic or Nova client.
    fn openstack_http(&self, timeout: Duration) -> HttpOptions {
        let mut http = HttpOptions::new(timeout);
        http.proxies = self.openstack.clone();
        http
    }
}

/// This process's environment (variables that are not UTF-8 left out).
fn own_environment() -> Vec<(String, String)> {
    std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))).collect()
}

/// The MAAS client options the settings imply: their timeout and CA; no
/// proxy, as python-libmaas (see [`Reach`]).
pub fn maas_options(settings: &MaasSettings) -> ClientOptions {
    let mut options = ClientOptions::new(Duration::from_secs(settings.timeout.into()));
    options.http.ca_cert_pem = settings.ca_cert.clone();
    options
}

/// A MAAS client for the settings, with `options` (see [`maas_options`]).
pub fn maas_client(settings: &MaasSettings, options: ClientOptions) -> Result<MaasClient, ClientBuildError> {
    MaasClient::new(settings.url.clone(), settings.api_key.clone(), options)
}

/// The Keystone credentials of the effective `[watcher_clients_auth]`.
fn keystone_auth(layout: &Layout) -> Result<KeystoneAuth, KeystoneError> {
    KeystoneAuth::from_sections(&|section| layout.section(section))
}

/// The effective configuration of the configuration's main program, which
/// must include watcher-conf-path itself: the Keystone credentials are
/// there.
fn credentials_layout(config: &CharmConfig) -> Result<Layout, KeystoneError> {
    let path: &Path = &config.watcher_conf_path;
    let config_error = |message: String| KeystoneError::Config { message };
    let layout = Layout::read(path, &config.drop_in_root, config.main_program())
        .map_err(|e| config_error(format!("cannot read the Keystone credentials: {e}")))?;
    if !layout.has_watcher_conf() {
        return Err(no_watcher_conf(path));
    }
    Ok(layout)
}

/// watcher-conf-path does not exist, so there are no credentials.
fn no_watcher_conf(path: &Path) -> KeystoneError {
    KeystoneError::Config {
        message: format!("cannot read {} for the Keystone credentials: it does not exist", path.display()),
    }
}

/// The Ironic client Watcher would build: credentials from the effective
/// `[watcher_clients_auth]` of watcher-conf-path and its drop-ins, as the
/// decision engine reads them (it lists the nodes; the applier, which
/// powers them, reads the same credentials).
fn ironic_client(config: &CharmConfig, reach: &Reach) -> Result<IronicClient, OpenStackError> {
    let keystone = |e| OpenStackError::keystone(Service::Ironic, e);
    let layout = credentials_layout(config).map_err(keystone)?;
    let auth = keystone_auth(&layout).map_err(keystone)?;
    IronicClient::new(auth, config.ironic.clone(), reach.openstack_http(IRONIC_TIMEOUT), IronicRetry::default())
}

/// The metal client Watcher would use for this configuration: MAAS when it
/// is configured, Ironic otherwise, each reached as Watcher reaches it.
/// `pool_size` sizes the connection pool for concurrent use.
pub fn connect(config: &CharmConfig, reach: &Reach, pool_size: usize) -> Result<Box<dyn MetalClient>, Error> {
    match &config.maas {
        Some(maas) => {
            let mut options = maas_options(maas);
            options.http.pool_size = pool_size.max(1);
            Ok(Box::new(maas_client(maas, options)?))
        }
        None => Ok(Box::new(ironic_client(config, reach).map_err(MetalError::Ironic)?)),
    }
}

/// The Nova client Watcher's services would build from their effective
/// configuration: `[watcher_clients_auth]` and `[nova_client]`, through
/// `reach`'s proxies.
pub(crate) fn nova_client_for(layout: &Layout, reach: &Reach) -> Result<NovaClient, OpenStackError> {
    let auth = keystone_auth(layout).map_err(|e| OpenStackError::keystone(Service::Nova, e))?;
    let mut options = NovaOptions::default();
    options.http.proxies = reach.openstack.clone();
    NovaClient::new(auth, NovaSettings::from_section(&layout.section("nova_client")), options)
}

/// The Nova client of watcher-conf-path, as the decision engine (which
/// pairs nodes and runs saving_energy) reads it.
pub(crate) fn nova_client(config: &CharmConfig, reach: &Reach) -> Result<NovaClient, Error> {
    let path = &config.watcher_conf_path;
    let layout = Layout::read(path, &config.drop_in_root, crate::config::DEFAULT_PROGRAM)?;
    if !layout.has_watcher_conf() {
        return Err(Error::Nova(OpenStackError::keystone(Service::Nova, no_watcher_conf(path))));
    }
    Ok(nova_client_for(&layout, reach)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook_environment() -> Vec<(String, String)> {
        vec![("http_proxy".to_owned(), "http://juju-proxy:3128".to_owned())]
    }

    fn proxy(reach: &Reach, url: &str) -> Option<String> {
        reach.openstack.proxy_for(&url::Url::parse(url).unwrap()).unwrap().map(|u| u.to_string())
    }

    #[test]
    fn the_services_environment_not_the_processes() {
        let service = vec![
            ("PATH".to_owned(), "/usr/bin".to_owned()),
            ("https_proxy".to_owned(), "http://site-proxy:8080".to_owned()),
        ];
        for elsewhere in [Elsewhere::Direct, Elsewhere::OwnEnvironment] {
            let reach = Reach::from_environment(Ok(Some(service.clone())), elsewhere, hook_environment);
            assert_eq!(proxy(&reach, "https://keystone:5000/v3").as_deref(), Some("http://site-proxy:8080/"));
            assert_eq!(proxy(&reach, "http://keystone:5000/v3"), None, "{elsewhere:?}");
        }
        let direct = Reach::from_environment(Ok(Some(Vec::new())), Elsewhere::OwnEnvironment, hook_environment);
        assert_eq!(proxy(&direct, "http://keystone:5000/v3"), None);
    }

    #[test]
    fn no_service_here_falls_back_as_the_face_says() {
        for found in [Ok(None), Err("systemctl: not booted with systemd".to_owned())] {
            let reach = Reach::from_environment(found.clone(), Elsewhere::Direct, hook_environment);
            assert_eq!(proxy(&reach, "http://keystone:5000/v3"), None);
            let reach = Reach::from_environment(found, Elsewhere::OwnEnvironment, hook_environment);
            assert_eq!(proxy(&reach, "http://keystone:5000/v3").as_deref(), Some("http://juju-proxy:3128/"));
        }
        assert_eq!(Elsewhere::for_command(true), Elsewhere::Direct);
        assert_eq!(Elsewhere::for_command(false), Elsewhere::OwnEnvironment);
    }
}
