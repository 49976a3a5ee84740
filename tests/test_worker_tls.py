

def test_worker_tls_flags_are_checked_in_one_line(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "TF_HOME": str(tmp_path), "TF_WORKER_TOKEN": "x"}
    import os
    env = dict(os.environ, **env)
    for args, want in ((["--tls-cert", str(tmp_path / "c.pem")], "--tls-cert and --tls-key go together"),
                       (["--tls-ca", str(tmp_path / "ca.pem")], "--tls-ca needs --tls-cert"),
                       (["--tls-cert", str(tmp_path / "no.pem"), "--tls-key", str(tmp_path / "no.key")],
                        "not a readable file")):
        r = subprocess.run([*CLI, "worker", "--scheduler", "127.0.0.1:1", "--tcp", "127.0.0.1:0", *args], env=env,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 1, r.stdout + r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and want in lines[0], r.stderr
