"""The operator's side (issue 15): output modes that stay machine-readable, a demo that never
touches a real state, logs that say what was called and never a secret, empty variables that
mean unset. Each test runs the real binary; those that reach AWS run against moto."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from estate import Estate, run_snaprelay, snaprelay_bin, snaprelay_env
from test_ec2_replicas import B, DST, SRC, TARGET_ROLE, policy_toml


def snaprelay(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(snaprelay_bin()), *args], env=env, capture_output=True, text=True, timeout=300
    )


def test_the_demo_never_writes_into_a_real_state(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["SNAPRELAY_STATE"] = str(tmp_path / "from-env.db")
    done = snaprelay(env, "--state", str(state), "demo", "--output", "json")
    assert done.returncode == 0, done.stderr
    assert isinstance(json.loads(done.stdout), list)
    assert not state.exists() and not (tmp_path / "from-env.db").exists()
    assert list(tmp_path.iterdir()) == [], "nothing is written beside it either"


def test_retention_without_a_retention_section_prints_json_in_json_mode(tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(
        'name = "no-retention"\n[source]\nregions = ["us-east-1"]\n'
        '[[source.resources]]\ntype = "ec2"\nids = ["i-0123456789abcdef0"]\n'
        '[[targets]]\nregion = "eu-west-1"\n'
    )
    done = snaprelay(dict(os.environ), "--policy", str(policy), "retention", "apply", "--output", "json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["policy"] == "no-retention" and doc["deleted"] == [] and "no [retention]" in doc["note"]


def test_refused_arguments_in_json_mode_are_one_json_error_document() -> None:
    done = snaprelay(dict(os.environ), "run", "--output", "json", "--no-such-flag")
    assert done.returncode == 2
    doc = json.loads(done.stdout)
    assert doc["code"] == "invalid_input" and "--no-such-flag" in doc["error"], doc


def test_a_json_log_is_json_on_every_line_names_each_aws_call_and_never_a_secret(
    estate: Estate, tmp_path: Path
) -> None:
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    instance, _ = estate.create_instance(None, SRC, [{"kms_key": source_key}])
    text = policy_toml(
        "e2e-log", [instance], [{"account": B, "region": DST, "role_arn": TARGET_ROLE, "kms_key": target_key}]
    )
    (tmp_path / "policy.toml").write_text(text)
    secret = "snaprelayTESTsecretKEY0123456789abcdefXYZ"
    env = snaprelay_env(estate.endpoint) | {"AWS_SECRET_ACCESS_KEY": secret, "SNAPRELAY_LOG": "debug"}
    done = snaprelay(
        env, "--policy", str(tmp_path / "policy.toml"), "--state", str(tmp_path / "state.db"),
        "run", "--log-format", "json",
    )
    assert done.returncode == 0, done.stderr
    lines = [l for l in done.stderr.splitlines() if l.strip()]
    events = [json.loads(l) for l in lines]  # every line parses
    assert all("event" in e for e in events), [e for e in events if "event" not in e][:3]
    calls = [e for e in events if e["event"] == "log" and e.get("message") == "aws call"]
    operations = {(c["service"], c["operation"]) for c in calls}
    assert {("ec2", "CreateSnapshots"), ("ec2", "CopySnapshot"), ("ec2", "ModifySnapshotAttribute")} <= operations
    assert all({"duration_ms", "outcome", "attempts"} <= c.keys() for c in calls)
    copies = [c for c in calls if c["operation"] == "CopySnapshot"]
    assert copies and all(c["region"] == DST and c["outcome"] == "ok" for c in copies), copies
    assert secret not in done.stderr and secret not in done.stdout


def test_an_empty_variable_is_unset(estate: Estate, tmp_path: Path) -> None:
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    instance, _ = estate.create_instance(None, SRC, [{"kms_key": source_key}])
    text = policy_toml(
        "e2e-empty", [instance], [{"account": B, "region": DST, "role_arn": TARGET_ROLE, "kms_key": target_key}]
    )
    (tmp_path / "policy.toml").write_text(text)
    env = snaprelay_env(estate.endpoint) | {"SNAPRELAY_ABORT_AFTER_SIDE_EFFECT": "", "SNAPRELAY_LOG": "", "AWS_REGION": ""}
    done = snaprelay(
        env, "--policy", str(tmp_path / "policy.toml"), "--state", str(tmp_path / "state.db"), "run",
        "--output", "json",
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "Success"
    code, _, _ = run_snaprelay(estate.endpoint, text, tmp_path, "sessions", "list")
    assert code == 0


def check_env_without(estate: Estate, **changes: str | None) -> dict[str, str]:
    env = snaprelay_env(estate.endpoint)
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def test_check_without_credentials_says_so_and_never_blames_a_permission(estate: Estate, tmp_path: Path) -> None:
    text = policy_toml("e2e-nocreds", ["i-0123456789abcdef0"], [{"account": B, "region": DST, "role_arn": TARGET_ROLE}])
    (tmp_path / "policy.toml").write_text(text)
    env = check_env_without(estate, AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None, AWS_PROFILE=None)
    done = snaprelay(env, "--policy", str(tmp_path / "policy.toml"), "check", "--output", "json")
    assert done.returncode == 1, done.stderr
    doc = json.loads(done.stdout)
    assert doc["code"] == "credentials", doc
    assert "credentials" in doc["error"] and "AWS_PROFILE" in doc["error"], doc
    assert "MISSING" not in done.stdout + done.stderr and "AssumeRole" not in done.stdout


def test_check_against_an_unreachable_endpoint_names_it(estate: Estate, tmp_path: Path) -> None:
    text = policy_toml("e2e-noaws", ["i-0123456789abcdef0"], [{"account": B, "region": DST, "role_arn": TARGET_ROLE}])
    (tmp_path / "policy.toml").write_text(text)
    env = check_env_without(estate, AWS_ENDPOINT_URL="http://127.0.0.1:9", AWS_MAX_ATTEMPTS="1")
    done = snaprelay(env, "--policy", str(tmp_path / "policy.toml"), "check", "--output", "json")
    assert done.returncode == 1, done.stderr
    doc = json.loads(done.stdout)
    assert doc["code"] == "network", doc
    assert "http://127.0.0.1:9" in doc["error"], doc
    assert "MISSING" not in done.stdout + done.stderr


def test_each_volumes_copy_is_named_in_the_progress(estate: Estate, tmp_path: Path) -> None:
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    instance, volumes = estate.create_instance(None, SRC, [{"kms_key": source_key}] * 2)
    text = policy_toml(
        "e2e-volumes", [instance], [{"account": B, "region": DST, "role_arn": TARGET_ROLE, "kms_key": target_key}]
    )
    code, _, stderr = run_snaprelay(estate.endpoint, text, tmp_path, "run", "--log-format", "json")
    assert code == 0, stderr
    progress = [json.loads(l)["message"] for l in stderr.splitlines() if '"event":"progress"' in l]
    copies = [m for m in progress if m.startswith("copy of ")]
    assert sorted(v for v in volumes if any(f"(volume {v})" in m for m in copies)) == sorted(volumes), copies


def test_help_shows_what_the_command_takes_and_says_what_it_does() -> None:
    env = dict(os.environ)
    assert "--poll-interval" not in snaprelay(env, "plan", "--help").stdout
    assert "--poll-interval" not in snaprelay(env, "sessions", "list", "--help").stdout
    assert "--poll-interval" in snaprelay(env, "run", "--help").stdout
    demo = snaprelay(env, "demo", "--help").stdout
    assert "scenario" not in demo.lower() and "simulated AWS" in demo


def test_a_terminal_escape_in_a_name_reaches_the_terminal_escaped(estate: Estate, tmp_path: Path) -> None:
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    # U+009B is CSI, a terminal escape in one character (XML, and so the EC2 API, cannot carry
    # ESC itself).
    instance, _ = estate.create_instance(None, SRC, [{"kms_key": source_key}], tags={"Name": "web\u009b2Jred"})
    text = policy_toml("e2e-escape", [instance], [{"account": B, "region": DST, "role_arn": TARGET_ROLE}])
    code, out, err = run_snaprelay(estate.endpoint, text, tmp_path, "plan")
    assert code == 0, err
    assert "\u009b" not in out + err
    assert "web\\u{9b}2Jred" in out, out


def test_sessions_list_keeps_its_columns_for_long_names_and_counts_an_interrupted_sessions_work(
    estate: Estate, tmp_path: Path
) -> None:
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    instance, _ = estate.create_instance(None, SRC, [{"kms_key": source_key}])
    name = "e2e-" + "x" * 60
    text = policy_toml(name, [instance], [{"account": B, "region": DST, "role_arn": TARGET_ROLE, "kms_key": target_key}])
    (tmp_path / "policy.toml").write_text(text)
    env = snaprelay_env(estate.endpoint) | {"SNAPRELAY_ABORT_AFTER_SIDE_EFFECT": "2"}
    killed = snaprelay(env, "--policy", str(tmp_path / "policy.toml"), "--state", str(tmp_path / "state.db"), "run")
    assert killed.returncode != 0
    code, out, _ = run_snaprelay(estate.endpoint, text, tmp_path, "sessions", "list")
    assert code == 0
    header, row = out.splitlines()[:2]
    assert row.index("Interrupted") == header.index("STATUS"), out
    assert row.split()[3] == "1", "the one resource it had begun"


def test_a_second_state_file_cannot_run_a_policy_whose_session_is_in_flight(estate: Estate, tmp_path: Path) -> None:
    """Issue 15, item 15: the lease lives in the state; AWS shows the session of another one."""
    import time

    import moto_ext

    moto_ext.COPY_PACING.pending_seconds = 60
    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    instance, volumes = estate.create_instance(None, SRC, [{"kms_key": source_key}] * 2)
    text = policy_toml(
        "e2e-two-states", [instance], [{"account": B, "region": DST, "role_arn": TARGET_ROLE, "kms_key": target_key}]
    )
    (tmp_path / "policy.toml").write_text(text)
    first = subprocess.Popen(
        [str(snaprelay_bin()), "--policy", str(tmp_path / "policy.toml"), "--state", str(tmp_path / "a.db"), "run"],
        env=snaprelay_env(estate.endpoint), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while len(estate.snapshots(B, DST)) < len(volumes):
            assert first.poll() is None and time.monotonic() < deadline, "no copies in flight"
            time.sleep(0.1)
    finally:
        first.kill()
        first.wait()
    before = (estate.snapshots(None, SRC), estate.snapshots(B, DST))

    second = snaprelay(
        snaprelay_env(estate.endpoint), "--policy", str(tmp_path / "policy.toml"), "--state", str(tmp_path / "b.db"),
        "run", "--output", "json",
    )
    assert second.returncode == 1, second.stderr
    doc = json.loads(second.stdout)
    assert doc["code"] == "conflict" and "another snaprelay" in doc["error"], doc
    assert (estate.snapshots(None, SRC), estate.snapshots(B, DST)) == before, "nothing was done"


def test_a_state_that_cannot_be_written_is_a_state_error_naming_why_for_every_command(tmp_path: Path) -> None:
    """Issue 15, item 7 (run as root, permissions do not stop us: a directory, and a path in
    a file system that refuses new files, stand in for an unwritable state)."""
    policy = tmp_path / "policy.toml"
    policy.write_text(
        'name = "unwritable"\n[source]\nregions = ["us-east-1"]\n'
        '[[source.resources]]\ntype = "ec2"\nids = ["i-0123456789abcdef0"]\n[[targets]]\nregion = "eu-west-1"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    for state, why in [(str(tmp_path), "is a directory"), ("/proc/snaprelay-state.db", "os error")]:
        for command in (["run"], ["sessions", "list"], ["restore-points"], ["gc"]):
            done = snaprelay(env, "--policy", str(policy), "--state", state, *command, "--output", "json")
            doc = json.loads(done.stdout)
            if "no state file" in doc["error"]:
                # A reading command given a state file that does not exist: invalid input.
                assert done.returncode == 2 and doc["code"] == "invalid_input", (command, doc)
                continue
            assert done.returncode == 1 and doc["code"] == "state", (state, command, doc)
            assert why in doc["error"], (state, command, doc)


def test_a_failure_storm_is_summarised_not_printed_once_per_resource(estate: Estate, tmp_path: Path) -> None:
    """Issue 15, item 10: 30 instances that all fail the same way (volumes under aws/ebs, which
    AWS cannot share with another account) give a bounded report."""
    instances = [estate.create_instance(None, SRC, [{"encrypted": True}])[0] for _ in range(30)]
    text = policy_toml("e2e-storm", instances, [{"account": B, "region": DST, "role_arn": TARGET_ROLE}])
    code, out, err = run_snaprelay(estate.endpoint, text, tmp_path, "run")
    assert code == 1, err
    assert "… and 10 more resources ended Failed" in out, out
    assert out.count("\n  ! ") < 40, out
    assert "10 × " in out, out
    code, out, _ = run_snaprelay(estate.endpoint, text, tmp_path, "run", "--output", "json")
    assert len(json.loads(out)["resources"]) == 30, "JSON keeps every resource"


def invalid(tmp_path: Path, text: str) -> dict:
    policy = tmp_path / "policy.toml"
    policy.write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    done = snaprelay(env, "--policy", str(policy), "--state", str(tmp_path / "s.db"), "plan", "--output", "json")
    assert done.returncode == 2, done.stderr
    assert "panicked" not in done.stderr
    doc = json.loads(done.stdout)
    assert doc["code"] == "invalid_input", doc
    assert not (tmp_path / "s.db").exists()
    return doc


POLICY_WITH_TAGS = """name = "{name}"
[source]
regions = ["us-east-1"]
[[source.resources]]
type = "ec2"
tags = {{ backup = {value} }}
[[targets]]
region = "eu-west-1"
"""


def test_a_datetime_where_a_string_belongs_is_refused_with_its_path_and_position(tmp_path: Path) -> None:
    doc = invalid(tmp_path, POLICY_WITH_TAGS.format(name="dt", value="2024-01-01T00:00:00Z"))
    assert "source.resources[0].tags.backup" in doc["error"] and "line 6" in doc["error"], doc
    assert "$__toml" not in doc["error"]


def test_echoed_input_is_cut_short_and_escaped(tmp_path: Path) -> None:
    doc = invalid(tmp_path, POLICY_WITH_TAGS.format(name="n" * 70_000, value='"x"'))
    assert len(doc["error"]) < 2_000 and "70000 characters" in doc["error"], doc["error"][:300]
    doc = invalid(tmp_path, POLICY_WITH_TAGS.format(name="bad\\u001b[2Jname", value='"x"'))
    assert "\x1b" not in doc["error"] and "\\u{1b}" in doc["error"], doc


def test_aws_limits_are_checked_before_any_call(tmp_path: Path) -> None:
    doc = invalid(tmp_path, POLICY_WITH_TAGS.format(name="long-tag", value='"' + "v" * 300 + '"'))
    assert "source.resources[0].tags.backup" in doc["error"] and "256" in doc["error"], doc


def test_a_region_aws_does_not_know_is_invalid_input(estate: Estate, tmp_path: Path) -> None:
    text = policy_toml("e2e-bogus", ["i-0123456789abcdef0"], [{"account": B, "region": DST, "role_arn": TARGET_ROLE}])
    text = text.replace(f'regions = ["{SRC}"]', 'regions = ["xx-bogus-1"]')
    assert "xx-bogus-1" in text
    (tmp_path / "policy.toml").write_text(text)
    # Without AWS_REGION the policy's Regions are all snaprelay has to go on.
    env = check_env_without(estate, AWS_REGION=None, AWS_DEFAULT_REGION=None)
    done = snaprelay(env, "--policy", str(tmp_path / "policy.toml"), "plan", "--output", "json")
    code, out, err = done.returncode, done.stdout, done.stderr
    assert code == 2, err
    doc = json.loads(out)
    assert doc["code"] == "invalid_input" and "source.regions[0]" in doc["error"] and "xx-bogus-1" in doc["error"], doc


def test_an_endless_policy_file_is_refused_at_once(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    done = snaprelay(env, "--policy", "/dev/zero", "--state", str(tmp_path / "s.db"), "plan", "--output", "json")
    assert done.returncode == 2, done.stderr
    doc = json.loads(done.stdout)
    assert doc["code"] == "invalid_input" and "larger than 1024 KiB" in doc["error"], doc


def test_sdk_settings_the_sdk_would_panic_on_are_invalid_input(estate: Estate, tmp_path: Path) -> None:
    text = policy_toml("e2e-env", ["i-0123456789abcdef0"], [{"account": B, "region": DST, "role_arn": TARGET_ROLE}])
    (tmp_path / "policy.toml").write_text(text)
    for name, value in [
        ("AWS_MAX_ATTEMPTS", "banana"),
        ("AWS_MAX_ATTEMPTS", "0"),
        ("AWS_RETRY_MODE", "banana"),
        ("AWS_REGION", "not a region!"),
        ("AWS_ENDPOINT_URL", "::not a url"),
    ]:
        env = snaprelay_env(estate.endpoint) | {name: value}
        for command in ("plan", "check"):
            done = snaprelay(env, "--policy", str(tmp_path / "policy.toml"), command, "--output", "json")
            assert done.returncode == 2 and "panicked" not in done.stderr, (name, value, done.stderr)
            doc = json.loads(done.stdout)
            assert doc["code"] == "invalid_input" and name in doc["error"], (name, doc)


def test_a_password_in_the_endpoint_url_is_never_echoed(tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY_WITH_TAGS.format(name="pw", value='"x"'))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {
        "AWS_ENDPOINT_URL": "http://user:hunter2secret@127.0.0.1:9",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_MAX_ATTEMPTS": "1",
    }
    done = snaprelay(env, "--policy", str(policy), "plan", "--output", "json")
    assert done.returncode == 1 and json.loads(done.stdout)["code"] == "network", done.stdout
    assert "hunter2secret" not in done.stdout + done.stderr
    assert "user:***@127.0.0.1:9" in done.stdout


def test_bidirectional_overrides_in_a_selector_are_shown_escaped(estate: Estate, tmp_path: Path) -> None:
    text = POLICY_WITH_TAGS.format(name="bidi", value='"\\u2066x\\u2069"').replace("backup", '"a\\u202eb"')
    code, out, err = run_snaprelay(estate.endpoint, text, tmp_path, "plan")
    assert code == 0, err
    assert not any(c in out + err for c in "\u202e\u2066\u2069"), out
    assert "\\u{202e}" in out, out


def test_gc_takes_snapshots_of_sessions_its_state_does_not_know_only_when_asked(estate: Estate, tmp_path: Path) -> None:
    """SPEC 6.7: a lost state must not orphan snapshots for good, nor let gc delete another
    state's: listed apart, taken only with --unknown-sessions, deleted only with --yes too."""
    import sqlite3

    source_key = estate.create_key(None, SRC, allow_accounts=[B])
    target_key = estate.create_key(B, DST)
    instance, _ = estate.create_instance(None, SRC, [{"kms_key": source_key}])
    text = policy_toml(
        "e2e-unknown", [instance], [{"account": B, "region": DST, "role_arn": TARGET_ROLE, "kms_key": target_key}]
    )
    code, _, err = run_snaprelay(estate.endpoint, text, tmp_path, "run")
    assert code == 0, err
    made = {s["SnapshotId"] for s in estate.snapshots(None, SRC, tags={"snaprelay:policy": "e2e-unknown"})}
    made |= {s["SnapshotId"] for s in estate.snapshots(B, DST)}
    # The state is lost: a new, empty one.
    lost = tmp_path / "new.db"
    sqlite3.connect(lost).close()
    env = snaprelay_env(estate.endpoint)

    def gc(*args: str) -> dict:
        done = snaprelay(env, "--policy", str(tmp_path / "policy.toml"), "--state", str(lost), "gc", *args, "--output", "json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    assert gc("--yes")["found"] == [], "apart, not taken"
    listed = {l["id"] for l in gc("--unknown-sessions")["found"]}
    assert listed == made, (listed, made)
    still = {s["SnapshotId"] for s in estate.snapshots(None, SRC, tags={"snaprelay:policy": "e2e-unknown"})}
    assert still | {s["SnapshotId"] for s in estate.snapshots(B, DST)} == made, "a listing deletes nothing"
    gc("--yes", "--unknown-sessions")
    assert estate.snapshots(None, SRC, tags={"snaprelay:policy": "e2e-unknown"}) == []
    assert estate.snapshots(B, DST) == []
