//! `watcher-metal render`, run as a process: output, files, exit codes.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

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
    let config = maas_config(dir.path(), &conf);
    let run = run(&["render", "--merge", "--config", path_str(&config)]);
    run.assert_no_secret();
    assert_eq!((run.code, run.stderr.as_str()), (0, ""));
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
    write(&config, &format!("watcher-conf-path: {}\nmaas-url: ''\n", conf.display()));
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
        &format!("maas-url: http://m:5240\nmaas-api-key: \"{KEY}\\n\"\nwatcher-conf-path: {}\n", conf.display()),
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
        r#"{{"maas-url": "http://10.0.0.2:5240/MAAS", "maas-api-key": null, "maas-api-key-secret": "secret:cs3v8m6a8r9s7b6qvcq0", "maas-timeout": 60, "maas-ca-cert": "", "ironic-api-version": "1", "ironic-endpoint-type": "publicURL", "ironic-region-name": "", "watcher-conf-path": "{}", "watcher-conf-mode": "merge"}}"#,
        conf.display()
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
        r#"{{"maas-url": "http://10.0.0.2:5240/MAAS", "maas-api-key-secret": "secret:cs3v8m6a8r9s7b6qvcq0", "watcher-conf-path": "{}"}}"#,
        conf.display()
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
        .args(["render", "--watcher-conf", "watcher.conf", "-o", "-", "--reveal-secrets"])
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
