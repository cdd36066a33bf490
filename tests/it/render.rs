//! `watcher-metal render`, run as a process: output, files, exit codes.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::common::*;

/// A watcher.conf as oslo-config-generator and a principal charm leave it:
/// comments, a stale [maas_client], CRLF-free, no trailing newline.
const EXISTING: &str = "# Watcher configuration, rendered by the watcher charm.\n[DEFAULT]\ndebug = False\ntransport_url = rabbit://watcher:rabbitpass@10.0.0.10:5672/openstack\n\n[database]\n# The SQLAlchemy connection string.\nconnection = mysql+pymysql://watcher:dbpass@10.0.0.11/watcher\n\n[maas_client]\n# MaaS URL, example: http://1.2.3.4:5240/MAAS (string value)\nurl = http://old-maas:5240/MAAS\n#timeout = 60\n\n[watcher_clients_auth]\nauth_type = password\npassword = kspass";

#[test]
fn readme_example_renders_a_full_file_with_secrets_masked() {
    let run = run(&[
        "render",
        "--full",
        "--config",
        "examples/charm-config.yaml",
        "--context",
        "examples/context.yaml",
        "--output",
        "-",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stderr, "");
    assert!(!run.stdout.contains("ExAmPlEtOkEnSeCrEt"));
    insta::assert_snapshot!("full_example", run.stdout);
}

#[test]
fn full_render_reveals_secrets_only_when_asked() {
    let run = run(&["render", "--full", "-c", "examples/charm-config.yaml", "-o", "-", "--reveal-secrets"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("\napi_key = ExAmPlEcOnSuMeRkEy:ExAmPlEtOkEnKeY00:ExAmPlEtOkEnSeCrEt00000000000000\n"));
}

#[test]
fn merge_updates_only_the_managed_sections() {
    let dir = tempfile::tempdir().unwrap();
    let conf = conf_path(dir.path());
    write(&conf, EXISTING);
    fs::set_permissions(&conf, fs::Permissions::from_mode(0o644)).unwrap();
    let config = maas_config(dir.path(), &conf);
    let run = run(&["render", "--merge", "--config", path_str(&config)]);
    run.assert_no_secret();
    // Others could read it; with the key in it, they cannot.
    let tightened = format!(
        "warning: {} holds the MAAS API key and was readable by others (mode 0644): now 0640\n",
        conf.display()
    );
    assert_eq!((run.code, run.stderr.as_str()), (0, tightened.as_str()));
    assert_eq!(run.stdout, format!("updated {}\n", conf.display()));
    let merged = fs::read_to_string(&conf).unwrap();
    // Everything outside [maas_client] is as it was, byte for byte.
    let (before, _) = EXISTING.split_once("[maas_client]").unwrap();
    assert!(merged.starts_with(before));
    assert!(merged.contains(
        "#timeout = 60\n\n[watcher_clients_auth]\nauth_type = password\npassword = kspass\n\n[ironic_client]\n"
    ));
    insta::assert_snapshot!("merged_existing", watcher_metal::watcher::ini::mask_secret_values(&merged));

    // A second run changes nothing and says so.
    let again = crate::common::run(&["render", "--merge", "--config", path_str(&config)]);
    assert_eq!(again.stdout, format!("unchanged {}\n", conf.display()));
    assert_eq!(fs::read_to_string(&conf).unwrap(), merged);
}

#[test]
fn merge_keeps_crlf_line_endings() {
    let dir = tempfile::tempdir().unwrap();
    let conf = conf_path(dir.path());
    write(&conf, "[DEFAULT]\r\ndebug = true\r\n");
    let config = maas_config(dir.path(), &conf);
    assert_eq!(run(&["render", "--merge", "-c", path_str(&config)]).code, 0);
    let merged = fs::read_to_string(&conf).unwrap();
    assert!(merged.starts_with("[DEFAULT]\r\ndebug = true\r\n\r\n[maas_client]\r\n"));
    assert_eq!(merged.matches('\n').count(), merged.matches("\r\n").count());
}

#[test]
fn unsetting_maas_removes_the_section() {
    let dir = tempfile::tempdir().unwrap();
    let conf = conf_path(dir.path());
    write(&conf, EXISTING);
    let config = dir.path().join("charm.yaml");
    write(
        &config,
        &format!(
            "watcher-conf-path: {}\ndrop-in-root: {}\nmaas-url: ''\n",
            conf.display(),
            drop_in_root(&conf).display()
        ),
    );
    let run = run(&["render", "--merge", "-c", path_str(&config)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let merged = fs::read_to_string(&conf).unwrap();
    assert!(!merged.contains("[maas_client]"));
    assert!(!merged.contains("old-maas"));
    assert!(merged.contains("[ironic_client]\n"));
}

#[test]
fn written_file_is_0640_and_keeps_owner_and_group() {
    let dir = tempfile::tempdir().unwrap();
    let conf = conf_path(dir.path());
    write(&conf, EXISTING);
    fs::set_permissions(&conf, fs::Permissions::from_mode(0o644)).unwrap();
    // As root, the file belongs to someone else, as watcher.conf does on a unit.
    if takes_root_branch("written_file_is_0640_and_keeps_owner_and_group") {
        std::os::unix::fs::chown(&conf, Some(65534), Some(65534)).unwrap();
    }
    let before = fs::metadata(&conf).unwrap();
    let config = maas_config(dir.path(), &conf);
    assert_eq!(run(&["render", "--merge", "-c", path_str(&config)]).code, 0);
    let after = fs::metadata(&conf).unwrap();
    assert_eq!(after.mode() & 0o777, 0o640);
    assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
    assert_ne!(after.ino(), before.ino(), "the file is replaced by rename, not rewritten in place");
    let leftovers = temp_files(dir.path());
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // A mode the site chose that others cannot read stays; so do a file's
    // mode without the key, and a new file's is 0640.
    fs::set_permissions(&conf, fs::Permissions::from_mode(0o600)).unwrap();
    write(&config, &format!("{}maas-timeout: 30\n", fs::read_to_string(&config).unwrap()));
    let r = run(&["render", "--merge", "-c", path_str(&config), "-o", path_str(&conf)]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    assert_eq!(fs::metadata(&conf).unwrap().mode() & 0o777, 0o600);
    let plain = dir.path().join("plain.conf");
    write(&plain, "[DEFAULT]\n");
    fs::set_permissions(&plain, fs::Permissions::from_mode(0o644)).unwrap();
    let ironic = dir.path().join("ironic.yaml");
    write(
        &ironic,
        &format!("watcher-conf-path: {}\ndrop-in-root: {}\n", conf.display(), drop_in_root(&conf).display()),
    );
    let r = run(&["render", "--merge", "-c", path_str(&ironic), "-o", path_str(&plain)]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    assert!(fs::read_to_string(&plain).unwrap().contains("[ironic_client]"));
    assert_eq!(fs::metadata(&plain).unwrap().mode() & 0o777, 0o644);
    let new = dir.path().join("new.conf");
    assert_eq!(run(&["render", "-c", path_str(&config), "-o", path_str(&new)]).code, 0);
    assert_eq!(fs::metadata(&new).unwrap().mode() & 0o777, 0o640);
}

#[test]
fn a_drop_in_root_watcher_does_not_read_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let conf = conf_path(dir.path());
    write(&conf, "[DEFAULT]\n");
    let config = maas_config(dir.path(), &conf);
    let root = drop_in_root(&conf);
    // No user `watcher` here, and the root is not /etc: written, not read.
    let r = run(&["render", "-c", path_str(&config)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, drop_in_lines(&conf, "created"));
    assert_eq!(
        r.stderr,
        format!(
            "warning: Watcher's services do not read the drop-ins in {}: drop-in-root is not /etc, and there is no user \
             watcher here\n  hint: set drop-in-root to /etc (the default) or to the services' HOME: oslo.config looks \
             for <program>.conf.d only in ~/ and /etc/\n",
            root.display()
        )
    );
    // Their HOME is elsewhere: said too.
    let elsewhere = accounts_with_home(dir.path(), Path::new("/var/lib/watcher"));
    let env = [("WATCHER_METAL_ETC", path_str(&elsewhere))];
    let r = run_with(&["render", "-c", path_str(&config)], &env, None);
    assert!(r.stderr.contains("drop-in-root is not /etc, and their HOME is /var/lib/watcher\n"), "{}", r.stderr);
    let doctor = run_with(&["doctor", "-c", path_str(&config), "--format", "json"], &env, None);
    let report: serde_json::Value = serde_json::from_str(doctor.stdout.trim()).unwrap();
    let check = &report["checks"][0];
    assert_eq!((check["name"].as_str(), check["status"].as_str()), (Some("config"), Some("warn")), "{report}");
    assert!(check["message"].as_str().unwrap().starts_with("Watcher's services do not read the drop-ins in"));
    // The root is their HOME: nothing to say. Merge mode writes no drop-in.
    let home = accounts_with_home(dir.path(), &root);
    let r = run_with(&["render", "-c", path_str(&config)], &[("WATCHER_METAL_ETC", path_str(&home))], None);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    let r = run(&["render", "--merge", "-c", path_str(&config)]);
    assert!(!r.stderr.contains("do not read"), "{}", r.stderr);
}

#[test]
fn check_reports_drift_with_a_masked_diff() {
    let dir = tempfile::tempdir().unwrap();
    let conf = conf_path(dir.path());
    write(&conf, EXISTING);
    let config = maas_config(dir.path(), &conf);
    let check = run(&["render", "--merge", "-c", path_str(&config), "--check"]);
    check.assert_no_secret();
    assert_eq!(check.code, 1);
    assert!(check.stdout.contains("\n-url = http://old-maas:5240/MAAS\n"), "{}", check.stdout);
    assert!(check.stdout.contains("\n+url = http://10.0.0.2:5240/MAAS\n"));
    assert!(check.stdout.contains("+api_key = <redacted>\n"));
    assert!(!check.stdout.contains("rabbitpass") && !check.stdout.contains("kspass"));
    assert_eq!(fs::read_to_string(&conf).unwrap(), EXISTING, "--check writes nothing");

    assert_eq!(run(&["render", "--merge", "-c", path_str(&config)]).code, 0);
    let clean = run(&["render", "--merge", "-c", path_str(&config), "--check"]);
    assert_eq!((clean.code, clean.stdout.as_str()), (0, ""));
}

#[test]
fn check_on_a_missing_file_would_create_it() {
    let dir = tempfile::tempdir().unwrap();
    let conf = conf_path(dir.path());
    let config = maas_config(dir.path(), &conf);
    let check = run(&["render", "--merge", "-c", path_str(&config), "--check"]);
    assert_eq!(check.code, 1);
    assert!(!conf.exists());
    let write = run(&["render", "--merge", "-c", path_str(&config)]);
    assert_eq!(write.stdout, format!("created {}\n", conf.display()));
}

/// As root, on a file system mounted read-only; as any other user, in a
/// directory it may not write. Each has its own hint.
#[test]
fn read_only_directory_leaves_the_old_file_intact() {
    const TEST: &str = "read_only_directory_leaves_the_old_file_intact";
    let (conf, hint, _guard): (std::path::PathBuf, &str, Box<dyn std::any::Any>) = if takes_root_branch(TEST) {
        let fs_ = match Tmpfs::mount("1m") {
            Ok(fs_) => fs_,
            Err(why) => return skipped(TEST, &why),
        };
        let conf = fs_.path().join("watcher.conf");
        write(&conf, EXISTING);
        fs_.remount_read_only();
        (conf, "the file system is read-only: remount it read-write or write elsewhere", Box::new(fs_))
    } else {
        let dir = tempfile::tempdir().unwrap();
        let conf = conf_path(dir.path());
        write(&conf, EXISTING);
        let conf_dir = conf.parent().unwrap().to_owned();
        fs::set_permissions(&conf_dir, fs::Permissions::from_mode(0o555)).unwrap();
        let hint = "run as a user that may write the file and its directory (hooks run as root)";
        (conf, hint, Box::new((Writable(conf_dir), dir)))
    };
    let cfg_dir = tempfile::tempdir().unwrap();
    let config = maas_config(cfg_dir.path(), &conf);
    let run = run(&["render", "--merge", "-c", path_str(&config)]);
    run.assert_no_secret();
    assert_eq!(run.code, 9, "{}", run.stderr);
    assert!(
        run.stderr.starts_with(&format!("error: cannot write {}: creating the lock file: ", conf.display())),
        "{}",
        run.stderr
    );
    assert!(run.stderr.ends_with(&format!("\n  hint: {hint}\n")), "{}", run.stderr);
    assert_eq!(fs::read_to_string(&conf).unwrap(), EXISTING);
}

#[test]
fn full_disk_leaves_the_old_file_intact() {
    const TEST: &str = "full_disk_leaves_the_old_file_intact";
    let small = match Tmpfs::mount("16k") {
        Ok(small) => small,
        Err(why) => return skipped(TEST, &why),
    };
    let conf = small.path().join("watcher.conf");
    write(&conf, EXISTING);
    // Fill the rest of the file system.
    let filler = small.path().join("filler");
    let _ = fs::write(&filler, vec![b'x'; 64 * 1024]);
    let cfg_dir = tempfile::tempdir().unwrap();
    let config = maas_config(cfg_dir.path(), &conf);
    let run = run(&["render", "--merge", "-c", path_str(&config)]);
    run.assert_no_secret();
    assert_eq!(run.code, 9, "{}", run.stderr);
    assert!(run.stderr.contains("hint: the file system is full"), "{}", run.stderr);
    assert_eq!(fs::read_to_string(&conf).unwrap(), EXISTING);
    let leftovers = temp_files(small.path());
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn links_directories_and_missing_directories_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real.conf");
    write(&real, EXISTING);
    let link = conf_path(dir.path());
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let config = maas_config(dir.path(), &link);
    let run1 = run(&["render", "--merge", "-c", path_str(&config)]);
    assert_eq!(run1.code, 8);
    assert_eq!(
        run1.stderr,
        format!(
            "error: {} is a symbolic link; refusing to replace it\n  hint: point watcher-conf-path (or --output) at the real file, not at a link\n",
            link.display()
        )
    );
    assert_eq!(fs::read_to_string(&real).unwrap(), EXISTING);

    let run2 = run(&["render", "--merge", "-c", path_str(&config), "-o", path_str(dir.path())]);
    assert_eq!(run2.code, 8);
    assert!(run2.stderr.contains("is a directory, not a file"));

    let missing = dir.path().join("nope").join("watcher.conf");
    let run3 = run(&["render", "--merge", "-c", path_str(&config), "-o", path_str(&missing)]);
    assert_eq!(run3.code, 9);
    assert!(run3.stderr.starts_with(&format!("error: directory {} does not exist", dir.path().join("nope").display())));
}

#[test]
fn config_errors_have_exit_codes_and_hints() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("charm.yaml");

    write(&config, "maas-url: http://m:5240/MAAS\n");
    let r = run(&["render", "-c", path_str(&config), "-o", "-"]);
    assert_eq!(r.code, 3);
    assert_eq!(
        r.stderr,
        "error: maas-url: is set but no API key is\n  hint: set maas-api-key-secret (or maas-api-key); get a key with `sudo maas apikey --generate --username USER` on the MAAS region controller\n"
    );

    write(&config, &format!("maas-url: http://m:5240/MAAS\nmaas-api-key: {KEY}x:extra\n"));
    let r = run(&["render", "-c", path_str(&config), "-o", "-"]);
    r.assert_no_secret();
    assert_eq!(r.code, 3);
    assert!(r.stderr.starts_with("error: maas-api-key: the API key has 4 colon-separated part(s)"));

    write(&config, "maas-url: [unclosed\n");
    let r = run(&["render", "-c", path_str(&config)]);
    assert_eq!(r.code, 4);
    assert!(r.stderr.contains("not valid YAML: syntax error at line"));

    let r = run(&["render", "-c", path_str(&dir.path().join("absent.yaml"))]);
    assert_eq!(r.code, 4);
    assert!(r.stderr.contains("cannot read: No such file or directory"));

    let r = run(&["render"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.starts_with("error: no charm configuration given\n  hint: pass --config FILE"));

    let r = run(&["render", "--check", "-o", "-", "-c", "examples/charm-config.yaml"]);
    assert_eq!(r.code, 2);

    let r = run(&["render", "--bogus"]);
    assert_eq!(r.code, 2);
}

#[test]
fn warnings_go_to_stderr_and_do_not_stop_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let conf = conf_path(dir.path());
    let config = dir.path().join("charm.yaml");
    write(
        &config,
        &format!(
            "maas-url: http://m:5240\nmaas-api-key: \"{KEY}\\n\"\nwatcher-conf-path: {}\ndrop-in-root: {}\n",
            conf.display(),
            drop_in_root(&conf).display()
        ),
    );
    let r = run(&["render", "--merge", "-c", path_str(&config)]);
    r.assert_no_secret();
    assert_eq!(r.code, 0);
    assert_eq!(
        r.stderr,
        "warning: maas-url has no path; MAAS normally serves its API under /MAAS (e.g. http://HOST:5240/MAAS)\nwarning: maas-api-key: the API key had surrounding whitespace or a newline; it was trimmed\n"
    );
    assert!(fs::read_to_string(&conf).unwrap().contains(&format!("api_key = {KEY}\n")));
}

#[test]
fn context_and_template_errors() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx.yaml");
    write(&ctx, "maas_client:\n  url: http://evil/MAAS\n");
    let r = run(&["render", "--full", "-c", "examples/charm-config.yaml", "--context", path_str(&ctx), "-o", "-"]);
    assert_eq!(r.code, 6);
    assert!(r.stderr.contains("sets [maas_client], which is managed from the charm config"));

    let templates = dir.path().join("templates");
    fs::create_dir(&templates).unwrap();
    write(&templates.join("maas_client.conf.j2"), "[maas_client]\nurl = {{ maas.url }\n");
    let r = run(&["render", "-c", "examples/charm-config.yaml", "--templates", path_str(&templates), "-o", "-"]);
    assert_eq!(r.code, 7);
    assert!(r.stderr.starts_with("error: template maas_client.conf.j2: syntax error"), "{}", r.stderr);

    // An override that tries to write another section is refused.
    write(&templates.join("maas_client.conf.j2"), "[maas_client]\nurl = {{ maas.url }}\n[DEFAULT]\ndebug = true\n");
    let r = run(&["render", "-c", "examples/charm-config.yaml", "--templates", path_str(&templates), "-o", "-"]);
    assert_eq!(r.code, 7);
    assert!(r.stderr.contains("must render exactly one section"), "{}", r.stderr);

    let r = run(&["render", "-c", "examples/charm-config.yaml", "--templates", "/nonexistent", "-o", "-"]);
    assert_eq!(r.code, 7);
}

#[test]
fn template_override_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let templates = dir.path().join("templates");
    fs::create_dir(&templates).unwrap();
    write(
        &templates.join("ironic_client.conf.j2"),
        "[ironic_client]\n# site override\napi_version = {{ ironic.api_version }}\nendpoint_type = {{ ironic.endpoint_type }}\n",
    );
    let r = run(&["render", "-c", "examples/charm-config.yaml", "--templates", path_str(&templates), "-o", "-"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("[ironic_client]\n# site override\napi_version = 1\nendpoint_type = internalURL\n"));
}

#[test]
fn values_cannot_inject_lines_or_sections() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("charm.yaml");
    write(&config, "ironic-region-name: \"RegionOne\\n[maas_client]\\nurl = http://evil/MAAS\"\n");
    let r = run(&["render", "-c", path_str(&config), "-o", "-"]);
    assert_eq!(r.code, 3);
    assert!(r.stdout.is_empty());
    // Even a template override cannot write a line break from a value.
    let ctx = dir.path().join("ctx.yaml");
    write(&ctx, "DEFAULT:\n  host: \"a\\r[maas_client]\"\n");
    let r = run(&["render", "--full", "-c", "examples/charm-config.yaml", "--context", path_str(&ctx), "-o", "-"]);
    assert_eq!(r.code, 6);
}

#[test]
fn hook_mode_reads_config_get_and_the_juju_secret() {
    let dir = tempfile::tempdir().unwrap();
    let conf = conf_path(dir.path());
    write(&conf, EXISTING);
    let config = format!(
        r#"{{"maas-url": "http://10.0.0.2:5240/MAAS", "maas-api-key": null, "maas-api-key-secret": "secret:cs3v8m6a8r9s7b6qvcq0", "maas-timeout": 60, "maas-ca-cert": "", "ironic-api-version": "1", "ironic-endpoint-type": "publicURL", "ironic-region-name": "", "watcher-conf-path": "{}", "watcher-conf-mode": "merge", "drop-in-root": "{}"}}"#,
        conf.display(),
        drop_in_root(&conf).display()
    );
    let juju = FakeJuju::new(&config, Some(&format!(r#"{{"api-key": "{KEY}"}}"#)));
    let r = juju.run(&["render"]);
    r.assert_no_secret();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, format!("updated {}\n", conf.display()));
    assert_eq!(juju.calls(), "config-get --all --format=json\nsecret-get secret:cs3v8m6a8r9s7b6qvcq0 --format=json\n");
    assert!(fs::read_to_string(&conf).unwrap().contains(&format!("api_key = {KEY}\n")));
}

#[test]
fn hook_mode_secret_failures_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let conf = conf_path(dir.path());
    let config = format!(
        r#"{{"maas-url": "http://10.0.0.2:5240/MAAS", "maas-api-key-secret": "secret:cs3v8m6a8r9s7b6qvcq0", "watcher-conf-path": "{}", "drop-in-root": "{}"}}"#,
        conf.display(),
        drop_in_root(&conf).display()
    );
    let juju = FakeJuju::new(&config, None);
    let r = juju.run(&["render"]);
    assert_eq!(r.code, 5);
    assert!(r.stderr.starts_with(
        "error: cannot read the API key from Juju secret secret:cs3v8m6a8r9s7b6qvcq0: secret-get: failed (exit status: 1): ERROR secret-get: not found\n  hint: check the URI and that the secret is granted"
    ), "{}", r.stderr);
    assert!(!conf.exists());
}

/// The drop-in of `program` for a watcher.conf at `<root>/etc/watcher/`.
fn drop_in_for(conf: &std::path::Path, program: &str) -> std::path::PathBuf {
    conf.parent().unwrap().parent().unwrap().join(format!("{program}.conf.d")).join("50-watcher-metal.conf")
}

/// The decision engine's drop-in.
fn drop_in_of(conf: &std::path::Path) -> std::path::PathBuf {
    drop_in_for(conf, "watcher-decision-engine")
}

/// What render prints for the two drop-ins.
fn drop_in_lines(conf: &std::path::Path, outcome: &str) -> String {
    ["watcher-decision-engine", "watcher-applier"]
        .iter()
        .map(|p| format!("{outcome} {}\n", drop_in_for(conf, p).display()))
        .collect()
}

#[test]
fn drop_in_is_the_default_and_leaves_watcher_conf_alone() {
    let dir = tempfile::tempdir().unwrap();
    let conf = conf_path(dir.path());
    write(&conf, EXISTING);
    let config = maas_config(dir.path(), &conf);
    let drop_in = drop_in_of(&conf);
    // `<dir>/etc` is the services' HOME here.
    let accounts = accounts_with_home(dir.path(), &drop_in_root(&conf));
    let run = |args: &[&str]| run_with(args, &[("WATCHER_METAL_ETC", path_str(&accounts))], None);

    let check = run(&["render", "-c", path_str(&config), "--check"]);
    check.assert_no_secret();
    assert_eq!(check.code, 1, "{}", check.stderr);
    assert!(check.stdout.contains("+url = http://10.0.0.2:5240/MAAS\n"), "{}", check.stdout);
    assert!(!drop_in.exists(), "--check writes nothing");

    let r = run(&["render", "-c", path_str(&config)]);
    r.assert_no_secret();
    // The stale [maas_client] in EXISTING has no marker: not ours, so it is
    // left, and it overrides the drop-in's url: a clash.
    assert_eq!(r.code, 13, "{}", r.stderr);
    assert_eq!(r.stdout, drop_in_lines(&conf, "created"));
    assert_eq!(
        r.stderr,
        format!(
            "error: {0} sets [maas_client] url, which overrides the charm's setting\n  hint: remove `url` from [maas_client] in {0}: Watcher reads watcher.conf after its drop-ins, and a later drop-in after an earlier one\n",
            conf.display()
        )
    );
    assert_eq!(fs::read_to_string(&conf).unwrap(), EXISTING, "watcher.conf is not edited");
    let text = fs::read_to_string(&drop_in).unwrap();
    assert!(text.starts_with("# Written by watcher-metal"), "{text}");
    assert!(text.contains(&format!("[maas_client]\n# Managed by watcher-metal from the charm config; local edits are replaced.\nurl = http://10.0.0.2:5240/MAAS\napi_key = {KEY}\ntimeout = 120\n")));
    assert_eq!(fs::metadata(&drop_in).unwrap().mode() & 0o777, 0o640);
    assert_eq!(fs::metadata(drop_in.parent().unwrap()).unwrap().mode() & 0o777, 0o750);

    // Without the clash: exit 0, and a second run changes nothing.
    write(&conf, "[DEFAULT]\ndebug = false\n");
    let r = run(&["render", "-c", path_str(&config)]);
    assert_eq!((r.code, r.stdout.clone()), (0, drop_in_lines(&conf, "unchanged")), "{}", r.stderr);
    let clean = run(&["render", "-c", path_str(&config), "--check"]);
    assert_eq!((clean.code, clean.stdout.as_str()), (0, ""));

    // Printing shows the drop-in, masked.
    let shown = run(&["render", "-c", path_str(&config), "-o", "-"]);
    assert_eq!(shown.code, 0);
    assert!(shown.stdout.starts_with("# Written by watcher-metal") && shown.stdout.contains("api_key = <redacted>\n"));
}

#[test]
fn merged_sections_move_to_the_drop_in() {
    let dir = tempfile::tempdir().unwrap();
    let conf = conf_path(dir.path());
    let principal = "[DEFAULT]\ndebug = false\n";
    write(&conf, principal);
    let config = maas_config(dir.path(), &conf);
    assert_eq!(run(&["render", "--merge", "-c", path_str(&config)]).code, 0);
    assert!(fs::read_to_string(&conf).unwrap().contains("[maas_client]"));
    let r = run(&["render", "-c", path_str(&config)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, format!("{}updated {}\n", drop_in_lines(&conf, "created"), conf.display()));
    assert_eq!(fs::read_to_string(&conf).unwrap(), principal);
}

#[test]
fn watcher_conf_is_read_with_its_drop_ins_and_may_be_relative() {
    let dir = tempfile::tempdir().unwrap();
    let conf = conf_path(dir.path());
    // watcher.conf.d, then the decision engine's directory, then watcher.conf.
    let project = conf.parent().unwrap().join("watcher.conf.d");
    fs::create_dir(&project).unwrap();
    write(&project.join("10-a.conf"), "[maas_client]\nurl = http://early:5240/MAAS\ntimeout = 7\n");
    let program = drop_in_of(&conf);
    fs::create_dir(program.parent().unwrap()).unwrap();
    write(&program.with_file_name("20-b.conf"), &format!("[maas_client]\nurl = http://m:5240/MAAS\napi_key = {KEY}\n"));
    write(&conf, "[maas_client]\ntimeout = 9\n[ironic_client]\nregion_name = R2\n");
    let out = std::process::Command::new(bin())
        .current_dir(conf.parent().unwrap())
        .args(["render", "--watcher-conf", "watcher.conf", "--drop-in-root", "..", "-o", "-", "--reveal-secrets"])
        .output()
        .unwrap();
    let r = Run::from_output(out);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains(&format!("url = http://m:5240/MAAS\napi_key = {KEY}\ntimeout = 9\n")), "{}", r.stdout);
    assert!(r.stdout.contains("region_name = R2\n"));
}

#[test]
fn output_onto_a_file_that_is_not_our_drop_in_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let conf = conf_path(dir.path());
    write(&conf, EXISTING);
    fs::set_permissions(&conf, fs::Permissions::from_mode(0o640)).unwrap();
    let config = maas_config(dir.path(), &conf);
    // A drop-in written over watcher.conf would lose [database] and the rest.
    for check in [false, true] {
        let mut args = vec!["render", "-c", path_str(&config), "-o", path_str(&conf)];
        if check {
            args.push("--check");
        }
        let r = run(&args);
        assert_eq!(r.code, 15, "{args:?}: {}", r.stderr);
        assert_eq!(
            r.stderr,
            format!(
                "error: {} exists and is not a drop-in watcher-metal wrote; writing a drop-in would replace all of it\n  \
                 hint: pass --merge to merge the managed sections into it, --full to write a whole watcher.conf there, \
                 or give --output a new file\n",
                conf.display()
            )
        );
        assert_eq!(r.stdout, "");
        assert_eq!(fs::read_to_string(&conf).unwrap(), EXISTING, "{args:?}");
    }

    // --merge keeps every byte outside the managed sections.
    let r = run(&["render", "--merge", "-c", path_str(&config), "-o", path_str(&conf)]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    let merged = fs::read_to_string(&conf).unwrap();
    assert!(merged.starts_with(EXISTING.split_once("[maas_client]").unwrap().0), "{merged}");

    // A new file is written, and then is ours to rewrite.
    let new = dir.path().join("my-drop-in.conf");
    let r = run(&["render", "-c", path_str(&config), "-o", path_str(&new)]);
    assert_eq!((r.code, r.stdout.clone()), (0, format!("created {}\n", new.display())), "{}", r.stderr);
    let r = run(&["render", "-c", path_str(&config), "-o", path_str(&new)]);
    assert_eq!((r.code, r.stdout.clone()), (0, format!("unchanged {}\n", new.display())), "{}", r.stderr);

    // --full writes the whole file the user asked for.
    let site = dir.path().join("site.conf");
    write(&site, "[DEFAULT]\ndebug = true\n");
    let r = run(&["render", "--full", "-c", path_str(&config), "-o", path_str(&site)]);
    assert_eq!((r.code, r.stdout.clone()), (0, format!("updated {}\n", site.display())), "{}", r.stderr);
}

#[test]
fn a_site_file_with_the_drop_in_name_is_never_replaced_nor_removed() {
    let dir = tempfile::tempdir().unwrap();
    let conf = conf_path(dir.path());
    write(&conf, EXISTING);
    let config = maas_config(dir.path(), &conf);
    let site = drop_in_for(&conf, "watcher-applier");
    const SITE: &str = "[DEFAULT]\ndebug = true\n";
    fs::create_dir(site.parent().unwrap()).unwrap();
    write(&site, SITE);
    for check in [true, false] {
        let mut args = vec!["render", "-c", path_str(&config)];
        if check {
            args.push("--check");
        }
        let r = run(&args);
        assert_eq!(r.code, 16, "{args:?}: {}", r.stderr);
        assert_eq!(
            r.stderr,
            format!(
                "error: {} is not a drop-in watcher-metal wrote; refusing to replace it\n  hint: rename or remove it \
                 by hand (drop-ins of ours start with `# Written by watcher-metal`), or set drop-in-name to another \
                 file name\n",
                site.display()
            )
        );
        assert_eq!(fs::read_to_string(&site).unwrap(), SITE);
        assert!(!drop_in_for(&conf, "watcher-decision-engine").exists(), "nothing is written");
        assert_eq!(fs::read_to_string(&conf).unwrap(), EXISTING);
    }

    // Merge mode cleans up our drop-ins: a site file of that name, in a
    // program's directory or in watcher.conf.d, stays, and so do their
    // directories.
    let legacy = conf.parent().unwrap().join("watcher.conf.d").join("50-watcher-metal.conf");
    fs::create_dir(legacy.parent().unwrap()).unwrap();
    write(&legacy, SITE);
    let r = run(&["render", "--merge", "-c", path_str(&config)]);
    assert_eq!((r.code, r.stdout.clone()), (0, format!("updated {}\n", conf.display())), "{}", r.stderr);
    assert_eq!(fs::read_to_string(&site).unwrap(), SITE);
    assert_eq!(fs::read_to_string(&legacy).unwrap(), SITE);

    // Our own drop-ins go in merge mode; the directory only when emptied.
    fs::remove_file(&site).unwrap();
    fs::remove_file(&legacy).unwrap();
    let r = run(&["render", "-c", path_str(&config)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    write(&site.with_file_name("10-site.conf"), SITE);
    let r = run(&["render", "--merge", "-c", path_str(&config)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!site.exists() && site.parent().unwrap().exists(), "ours removed, the directory holding a site file kept");
    assert!(!drop_in_for(&conf, "watcher-decision-engine").parent().unwrap().exists(), "ours, emptied: removed");
    assert!(legacy.parent().unwrap().exists(), "watcher.conf.d is not ours, even empty");
}

#[test]
fn yaml_numbers_are_refused_for_string_options_and_kept_as_written_in_the_context() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("charm.yaml");
    write(&config, "ironic-api-version: 1.10\nironic-region-name: true\n");
    let r = run(&["render", "-c", path_str(&config), "-o", "-"]);
    assert_eq!(r.code, 3);
    assert_eq!(
        r.stderr,
        "error: 2 configuration problems:\n  ironic-api-version: must be a string, got a number (1.10, which YAML reads as 1.1)\n    hint: quote it, as Juju requires for a string option: ironic-api-version: \"1.10\"\n  ironic-region-name: must be a string, got a boolean (true)\n    hint: quote it, as Juju requires for a string option: ironic-region-name: \"true\"\n"
    );
    assert_eq!(r.stdout, "");

    write(&config, "ironic-api-version: \"1.10\"\n");
    let ctx = dir.path().join("ctx.yaml");
    write(&ctx, "nova_client:\n  api_version: 2.60\n");
    let r = run(&["render", "--full", "-c", path_str(&config), "--context", path_str(&ctx), "-o", "-"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("[nova_client]\napi_version = 2.60\n"), "{}", r.stdout);
    assert!(r.stdout.contains("[ironic_client]\n"), "{}", r.stdout);
    assert!(r.stdout.contains("\napi_version = 1.10\n"), "{}", r.stdout);
}

/// A site drop-in of the applier's that sets `[maas_client] url`: Watcher's
/// applier would use it, whatever the charm renders.
fn applier_sets_a_url(root: &std::path::Path) -> std::path::PathBuf {
    let dir = root.join("etc/watcher-applier.conf.d");
    fs::create_dir_all(&dir).unwrap();
    let site = dir.join("60-site.conf");
    write(&site, "[maas_client]\nurl = http://elsewhere:5240/MAAS\n");
    site
}

#[test]
fn clashes_are_found_for_every_service_in_every_mode() {
    let dir = tempfile::tempdir().unwrap();
    let conf = conf_path(dir.path());
    write(&conf, "[DEFAULT]\ndebug = false\n");
    let site = applier_sets_a_url(dir.path());
    let clash = format!("error: {} sets [maas_client] url, which overrides the charm's setting\n", site.display());
    // Ironic in merge mode: the merge removes [maas_client], the applier's
    // drop-in still sets a URL.
    let config = dir.path().join("charm.yaml");
    let root = drop_in_root(&conf);
    write(
        &config,
        &format!("watcher-conf-path: {}\ndrop-in-root: {}\nwatcher-conf-mode: merge\n", conf.display(), root.display()),
    );
    let r = run(&["render", "-c", path_str(&config)]);
    assert_eq!(r.code, 13, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.starts_with(&clash), "{}", r.stderr);
    // A whole watcher.conf is checked the same way, written or not.
    let whole = dir.path().join("whole.yaml");
    write(&whole, &format!("watcher-conf-path: {}\ndrop-in-root: {}\n", conf.display(), root.display()));
    let r = run(&["render", "--full", "-c", path_str(&whole)]);
    assert_eq!(r.code, 13, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.stdout, format!("updated {}\n", conf.display()), "the file is written, as with the drop-ins");
    assert!(r.stderr.starts_with(&clash), "{}", r.stderr);
    let r = run(&["render", "--full", "-c", path_str(&whole), "--check"]);
    assert_eq!((r.code, r.stdout.as_str()), (13, ""), "{}", r.stderr);
    let r = run(&["render", "--full", "-c", path_str(&whole), "-o", path_str(&conf)]);
    assert_eq!(r.code, 13, "{}", r.stderr);
    // Printed, or written elsewhere, it is not what Watcher reads.
    assert_eq!(run(&["render", "--full", "-c", path_str(&whole), "-o", "-"]).code, 0);
    assert_eq!(run(&["render", "--full", "-c", path_str(&whole), "-o", path_str(&dir.path().join("w.conf"))]).code, 0);
    fs::remove_file(&site).unwrap();
    assert_eq!(run(&["render", "--full", "-c", path_str(&whole)]).code, 0);
    assert_eq!(run(&["render", "-c", path_str(&config)]).code, 0);
}

#[test]
fn check_with_an_output_file_says_when_only_a_secret_differs() {
    let dir = tempfile::tempdir().unwrap();
    let conf = conf_path(dir.path());
    let config = maas_config(dir.path(), &conf);
    let out = dir.path().join("out.conf");
    assert_eq!(run(&["render", "--merge", "-c", path_str(&config), "-o", path_str(&out)]).code, 0);
    let rotated = fs::read_to_string(&config).unwrap().replace(TOKEN_SECRET, "RotatedTokenSecretAbcdefghijklmno");
    write(&config, &rotated);
    let r = run(&["render", "--merge", "-c", path_str(&config), "-o", path_str(&out), "--check"]);
    r.assert_no_secret();
    assert_eq!(r.code, 1);
    assert_eq!(r.stdout, format!("{}: only secret values differ (masked)\n", out.display()));
}

#[test]
fn flags_that_would_be_ignored_or_starve_each_other_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let conf = conf_path(dir.path());
    let config = maas_config(dir.path(), &conf);
    // --reveal-secrets does nothing but with --output -.
    let r = run(&["render", "-c", path_str(&config), "--reveal-secrets"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.starts_with("error: --reveal-secrets applies only to --output -"), "{}", r.stderr);
    assert!(!conf.exists() && !drop_in_of(&conf).exists(), "nothing is written");
    let r = run(&["render", "--full", "-c", path_str(&config), "-o", path_str(&conf), "--reveal-secrets"]);
    assert_eq!(r.code, 2);
    // Two flags reading standard input.
    let text = fs::read_to_string(&config).unwrap();
    let r = crate::nodes::run_refusing_stdin(&["render", "--full", "-c", "-", "--context", "-", "-o", "-"], &text);
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "error: --config and --context both read standard input (-)\n  hint: give --context a file (or --config)\n"
    );
}

#[test]
fn a_missing_output_directory_is_named_with_its_own_hint() {
    let dir = tempfile::tempdir().unwrap();
    let config = maas_config(dir.path(), &conf_path(dir.path()));
    let missing = dir.path().join("nope");
    let r = run(&["render", "--merge", "-c", path_str(&config), "-o", path_str(&missing.join("watcher.conf"))]);
    assert_eq!(r.code, 9);
    assert_eq!(
        r.stderr,
        format!(
            "error: directory {0} does not exist\n  hint: create {0} first, or give --output a path in an existing directory\n",
            missing.display()
        )
    );
}

#[test]
fn a_duplicate_option_is_named_with_its_lines() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("charm.yaml");
    write(&config, "# options\nmaas-url: http://m:5240/MAAS\nmaas-timeout: 30\nmaas-url: http://n:5240/MAAS\n");
    let r = run(&["render", "-c", path_str(&config), "-o", "-"]);
    assert_eq!(r.code, 4);
    assert_eq!(
        r.stderr,
        format!(
            "error: {}: line 4: `maas-url` is set twice (first at line 2)\n  hint: keep one setting of each option\n",
            config.display()
        )
    );
    // In `juju deploy --config`'s form too, and a key is not shown.
    write(&config, &format!("watcher-maas:\n  maas-timeout: 30\n  \"{KEY}\": 1\n  {KEY}: 2\n"));
    let r = run(&["render", "-c", path_str(&config), "-o", "-"]);
    r.assert_no_secret();
    assert_eq!(r.code, 4);
    assert!(
        r.stderr.contains(": line 4: a key shaped like a MAAS API key (not shown) is set twice (first at line 3)"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_timeout_too_large_is_named_so() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("charm.yaml");
    write(&config, "maas-timeout: 99999999999\n");
    let r = run(&["render", "-c", path_str(&config), "-o", "-"]);
    assert_eq!(r.code, 3);
    assert!(
        r.stderr.starts_with("error: maas-timeout: must be at most 2147483647 seconds, got 99999999999\n"),
        "{}",
        r.stderr
    );
}

/// A byte order mark before the options, as some editors save YAML: read
/// as PyYAML reads it (it skips the mark), and the same options result.
#[test]
fn a_byte_order_mark_is_read_as_pyyaml_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let conf = conf_path(dir.path());
    let options =
        format!("maas-url: http://10.0.0.2:5240/MAAS\nmaas-api-key: {KEY}\nwatcher-conf-path: {}\n", conf.display());
    let config = dir.path().join("charm.yaml");
    fs::write(&config, format!("\u{feff}{options}")).unwrap();
    let plain = dir.path().join("plain.yaml");
    write(&plain, &options);
    let with_mark = run(&["render", "-c", path_str(&config), "-o", "-", "--reveal-secrets"]);
    assert_eq!(with_mark.code, 0, "{}", with_mark.stderr);
    assert_eq!(with_mark.stdout, run(&["render", "-c", path_str(&plain), "-o", "-", "--reveal-secrets"]).stdout);
    let from_stdin =
        run_with(&["render", "-c", "-", "-o", "-", "--reveal-secrets"], &[], Some(&format!("\u{feff}{options}")));
    assert_eq!(from_stdin.stdout, with_mark.stdout);
    // PyYAML, the file's bytes and its text alike.
    if let Some(python) = peer_python("WATCHER_METAL_PYTHON", "PyYAML's reading of a byte order mark") {
        let script = "import json, sys, yaml\npath = sys.argv[1]\nwith open(path, 'rb') as f: a = yaml.safe_load(f)\nwith open(path, encoding='utf-8') as f: b = yaml.safe_load(f)\nassert a == b, (a, b)\nprint(json.dumps(a, sort_keys=True))\n";
        let out = std::process::Command::new(python).args(["-c", script, path_str(&config)]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let read: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(read["maas-url"], "http://10.0.0.2:5240/MAAS");
        assert_eq!(read.as_object().unwrap().len(), 3, "{read}");
        assert!(with_mark
            .stdout
            .contains(&format!("\nurl = {}\napi_key = {KEY}\n", read["maas-url"].as_str().unwrap())));
    }
}

/// A watcher.conf whose values Watcher reads as Ironic: an empty `url =`
/// with a key. The errors and warnings of `--watcher-conf` name
/// watcher.conf's options and files, never the charm's options.
#[test]
fn watcher_conf_findings_are_in_watcher_confs_words() {
    let dir = tempfile::tempdir().unwrap();
    let conf = conf_path(dir.path());
    write(&conf, &format!("[maas_client]\nurl =\napi_key = {KEY}\n"));
    let root = drop_in_root(&conf);
    let r = run(&["validate", "--watcher-conf", path_str(&conf), "--drop-in-root", path_str(&root)]);
    r.assert_no_secret();
    assert_eq!(r.code, 11, "{}", r.stderr);
    assert_eq!(
        r.stderr,
        format!("warning: [maas_client] api_key in {0} is set, but [maas_client] url is not: Watcher uses Ironic and does not read the key\nerror: [maas_client] url is not set in {0} or its drop-ins, so Watcher uses Ironic\n  hint: set [maas_client] url and api_key (the charm writes them in a drop-in, from maas-url and its key)\n", conf.display())
    );
    // The URL without a key, in a drop-in, with a bad timeout in watcher.conf.
    let drop_in = drop_in_of(&conf);
    fs::create_dir_all(drop_in.parent().unwrap()).unwrap();
    write(&drop_in, "[maas_client]\nurl = http://m:5240/MAAS\n");
    write(&conf, "[maas_client]\ntimeout = 0\n");
    let r = run(&["render", "--watcher-conf", path_str(&conf), "--drop-in-root", path_str(&root), "-o", "-"]);
    assert_eq!(r.code, 3);
    let charm_options = ["maas-url", "maas-api-key", "maas-timeout", "ironic-"];
    assert!(charm_options.iter().all(|o| !r.stderr.contains(o)), "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "  [maas_client] url in {}: is set but no API key is\n    hint: set [maas_client] api_key;",
            drop_in.display()
        )),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(&format!("  [maas_client] timeout in {}: must be greater than 0, got 0\n", conf.display())),
        "{}",
        r.stderr
    );
}

/// A directory whose name is not UTF-8 is used as named, byte for byte.
#[test]
fn a_watcher_conf_in_a_directory_not_named_in_utf8_keeps_its_name() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let odd = dir.path().join(std::ffi::OsStr::from_bytes(b"etc-\xff"));
    fs::create_dir_all(odd.join("watcher")).unwrap();
    let conf = odd.join("watcher/watcher.conf");
    write(&conf, "[ironic_client]\nregion_name = R1\n");
    let out = std::process::Command::new(bin())
        .arg("render")
        .arg("--watcher-conf")
        .arg(&conf)
        .arg("--drop-in-root")
        .arg(&odd)
        .env_remove("JUJU_CONTEXT_ID")
        .output()
        .unwrap();
    assert_real_etc_untouched(&["render", "--watcher-conf"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let drop_in = odd.join("watcher-decision-engine.conf.d/50-watcher-metal.conf");
    assert!(fs::read_to_string(&drop_in).unwrap().contains("region_name = R1\n"));
    let lossy = dir.path().join("etc-\u{fffd}");
    assert!(!lossy.exists(), "nothing goes to a lossy copy of the name");
}
