"""backup.yml's schedule is the runbook's cron line, idempotent and removable.

Bad input to backup.yml, restore.yml and rotate_jwt_keys.yml is tested in tests/roles/test_playbook_inputs.py.

    python -m pytest tests/roles/test_backup_jwt_input.py -q
"""

import stat

from tests.roles.playbook_runner import ansible_playbook, stack_ports


def run(collection_root, playbook, *extra, base_dir, path_prepend=None):
    return ansible_playbook(collection_root, playbook, *stack_ports(), *extra, base_dir=base_dir,
                            path_prepend=path_prepend)


def test_schedule_is_the_runbook_cron_line(collection_root, tmp_path):
    """backup_action=schedule writes `0 2 * * *` running backup.yml under flock; a rerun changes nothing;
    unschedule removes it. The cron module needs a crontab binary, which this machine may lack: a stub is enough
    with a cron_file (the module then reads and writes the file itself)."""
    stub = tmp_path / "bin" / "crontab"
    stub.parent.mkdir()
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    cron_file = tmp_path / "apigw-backup"
    base = str(tmp_path / "base")
    common = ["-e", f"backup_schedule_cron_file={cron_file}", "-e", "backup_schedule_user=root",
              "-e", "backup_schedule_extra_args='-e backup_name=nightly-%Y%m%d'"]

    first = run(collection_root, "playbooks/backup.yml", "-e", "backup_action=schedule", *common,
                base_dir=base, path_prepend=str(stub.parent))
    assert first.returncode == 0, first.stdout + first.stderr
    line = [entry for entry in cron_file.read_text().splitlines() if entry and not entry.startswith("#")]
    assert len(line) == 1, cron_file.read_text()
    assert line[0].startswith("0 2 * * * root cd "), line[0]
    assert "flock -n " in line[0] and "/playbooks/backup.yml" in line[0], line[0]
    assert "ansible-playbook" in line[0] and f"APIGW_BASE_DIR={base}" in line[0], line[0]
    assert r"nightly-\%Y\%m\%d" in line[0], line[0]
    assert "Daily backup scheduled (0 2 * * *" in first.stdout and "changed." in first.stdout

    again = run(collection_root, "playbooks/backup.yml", "-e", "backup_action=schedule", *common,
                base_dir=base, path_prepend=str(stub.parent))
    assert again.returncode == 0 and "already so." in again.stdout, again.stdout + again.stderr

    gone = run(collection_root, "playbooks/backup.yml", "-e", "backup_action=unschedule", *common,
               base_dir=base, path_prepend=str(stub.parent))
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert not cron_file.exists() or not [e for e in cron_file.read_text().splitlines() if e and not e.startswith("#")]
