//! The clients Watcher's services would build from a configuration: MAAS
//! when `maas-url` is set, Ironic otherwise, and Nova; with the Keystone,
//! `[ironic_client]` and `[nova_client]` settings of watcher.conf and its
//! drop-ins as the decision engine reads them. The protocol clients take
//! plain settings; this is where the charm's configuration becomes them.

use std::path::Path;
use std::time::Duration;

use crate::clients::http::{ClientBuildError, HttpOptions};
use crate::clients::maas::{ClientOptions, MaasClient};
use crate::clients::openstack::ironic::{IronicClient, IronicRetry};
use crate::clients::openstack::keystone::{KeystoneAuth, KeystoneError};
use crate::clients::openstack::nova::{NovaClient, NovaOptions, NovaSettings};
use crate::clients::openstack::service::{OpenStackError, Service};
use crate::config::{CharmConfig, MaasSettings};
use crate::metal::{MetalClient, MetalError};
use crate::ops::Error;
use crate::watcher::effective::Layout;

/// How long an Ironic request may take (Watcher's client has no timeout).
const IRONIC_TIMEOUT: Duration = Duration::from_secs(60);

/// The MAAS client options the settings imply: their timeout and CA.
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
fn ironic_client(config: &CharmConfig) -> Result<IronicClient, OpenStackError> {
    let keystone = |e| OpenStackError::keystone(Service::Ironic, e);
    let layout = credentials_layout(config).map_err(keystone)?;
    let auth = keystone_auth(&layout).map_err(keystone)?;
    IronicClient::new(auth, config.ironic.clone(), HttpOptions::new(IRONIC_TIMEOUT), IronicRetry::default())
}

/// The metal client Watcher would use for this configuration: MAAS when it
/// is configured, Ironic otherwise. `pool_size` sizes the connection pool
/// for concurrent use.
pub fn connect(config: &CharmConfig, pool_size: usize) -> Result<Box<dyn MetalClient>, Error> {
    match &config.maas {
        Some(maas) => {
            let mut options = maas_options(maas);
            options.http.pool_size = pool_size.max(1);
            Ok(Box::new(maas_client(maas, options)?))
        }
        None => Ok(Box::new(ironic_client(config).map_err(MetalError::Ironic)?)),
    }
}

/// The Nova client Watcher's services would build from their effective
/// configuration: `[watcher_clients_auth]` and `[nova_client]`.
pub(crate) fn nova_client_for(layout: &Layout, options: NovaOptions) -> Result<NovaClient, OpenStackError> {
    let auth = keystone_auth(layout).map_err(|e| OpenStackError::keystone(Service::Nova, e))?;
    NovaClient::new(auth, NovaSettings::from_section(&layout.section("nova_client")), options)
}

/// The Nova client of watcher-conf-path, as the decision engine (which
/// pairs nodes and runs saving_energy) reads it.
pub(crate) fn nova_client(config: &CharmConfig) -> Result<NovaClient, Error> {
    let path = &config.watcher_conf_path;
    let layout = Layout::read(path, &config.drop_in_root, crate::config::DEFAULT_PROGRAM)?;
    if !layout.has_watcher_conf() {
        return Err(Error::Nova(OpenStackError::keystone(Service::Nova, no_watcher_conf(path))));
    }
    Ok(nova_client_for(&layout, NovaOptions::default())?)
}
