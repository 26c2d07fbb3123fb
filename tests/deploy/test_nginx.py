"""The gateway config: `nginx -t` on every render, and the directives the design asks for."""

from __future__ import annotations

import datetime
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shopfleet.deploy.render.gateway.files import render_local
from shopfleet.deploy.topology import Topology, load_topology
from tests.support import REPO_ROOT

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
TOPOLOGY = REPO_ROOT / "shopfleet.toml"


def nginx_test(conf: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run `nginx -t` on a config laid out as a local run lays it out (var/run/nginx/)."""
    prefix = tmp_path / "var" / "run" / "nginx"
    prefix.mkdir(parents=True, exist_ok=True)
    (tmp_path / "var" / "log").mkdir(exist_ok=True)
    path = prefix / "nginx.conf"
    path.write_text(conf)
    return subprocess.run(
        [NGINX, "-t", "-p", f"{prefix}/", "-c", str(path), "-e", "stderr"],
        capture_output=True,
        text=True,
        check=False,
    )


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def with_tls(topology: Topology, cert: Path, key: Path) -> Topology:
    gateway = topology.gateway.model_copy(
        update={"tls_certificate": str(cert), "tls_certificate_key": str(key)}
    )
    return topology.model_copy(update={"gateway": gateway})


def server_blocks(conf: str) -> list[str]:
    """The text of each `server { ... }` block (brace-balanced)."""
    blocks = []
    for match in re.finditer(r"^    server \{$", conf, re.MULTILINE):
        depth, index = 0, match.end() - 1
        for index in range(match.end() - 1, len(conf)):
            depth += {"{": 1, "}": -1}.get(conf[index], 0)
            if depth == 0:
                break
        blocks.append(conf[match.start() : index + 1])
    return blocks


@pytest.mark.parametrize("profile", ["default", "bench"])
def test_nginx_t_accepts_every_profile(profile: str, tmp_path: Path) -> None:
    conf = render_local(load_topology(TOPOLOGY, profile))
    result = nginx_test(conf, tmp_path)
    assert result.returncode == 0, result.stderr


def test_nginx_t_accepts_tls_and_renders_a_modern_https_server(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    topology = with_tls(load_topology(TOPOLOGY), cert, key)
    conf = render_local(topology)
    result = nginx_test(conf, tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"listen {topology.gateway.https_port} ssl http2" in conf
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in conf
    assert "ssl_session_cache shared:" in conf
    assert len(server_blocks(conf)) == 3


def test_without_tls_there_is_no_https_server() -> None:
    conf = render_local(load_topology(TOPOLOGY))
    assert "ssl" not in conf
    assert len(server_blocks(conf)) == 2


def test_nginx_t_accepts_drained_and_scaled_to_zero_services(tmp_path: Path) -> None:
    topology = load_topology(TOPOLOGY)
    services = dict(topology.services)
    services["orders"] = services["orders"].model_copy(update={"instances": 0})
    scaled = topology.model_copy(update={"services": services})
    conf = render_local(scaled, worker_user="root", excluded=frozenset({"products-2"}))
    result = nginx_test(conf, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "127.0.0.1:3011" not in conf
    assert "127.0.0.1:3001 " in conf and "127.0.0.1:3021 " in conf


def test_a_service_never_loses_its_last_instance_to_draining() -> None:
    topology = load_topology(TOPOLOGY)
    conf = render_local(topology, excluded=frozenset({"categories-1", "categories-2"}))
    assert "127.0.0.1:3002 " in conf and "127.0.0.1:3012 " in conf


def test_every_instance_is_an_upstream_server_with_passive_health_checks() -> None:
    topology = load_topology(TOPOLOGY)
    conf = render_local(topology)
    for service in topology.ordered_services():
        upstream = re.search(rf"upstream {service.name} \{{(.*?)\}}", conf, re.DOTALL)
        assert upstream is not None
        body = upstream.group(1)
        assert "least_conn;" in body
        # Shared by the workers; an instance is never marked down (a refused connect is
        # retried on the next one), so a restart never outlives itself at the gateway.
        assert f"zone upstream_{service.name} 64k;" in body
        ports = re.findall(r"server 127\.0\.0\.1:(\d+) max_fails=0;", body)
        assert [int(p) for p in ports] == [
            service.instance_port(i) for i in range(1, service.instances + 1)
        ]
        assert f"keepalive {topology.gateway.upstream_keepalive};" in body
        # Below uvicorn's 75 s keep-alive, so nginx never reuses a connection being closed.
        timeout = int(re.search(r"keepalive_timeout (\d+)s;", body).group(1))  # type: ignore[union-attr]
        assert timeout < 75


def test_rate_limits_come_from_the_topology_and_answer_429() -> None:
    for profile in ("default", "bench"):
        topology = load_topology(TOPOLOGY, profile)
        limits = topology.gateway.rate_limits
        conf = render_local(topology)
        for zone in ("general", "auth", "api"):
            rate = getattr(limits, zone).rate
            assert f"zone={zone}:10m rate={rate}r/s;" in conf
        assert f"limit_req zone=auth burst={limits.auth.burst} nodelay;" in conf
        connections = min(limits.connections_per_client, 65535)  # nginx's ceiling
        assert f"limit_conn per_client {connections};" in conf
        assert "limit_req_status 429;" in conf and "limit_conn_status 429;" in conf


def test_login_and_register_use_the_auth_zone_and_429_says_retry_after() -> None:
    conf = render_local(load_topology(TOPOLOGY))
    for path in ("/v1/auth/login", "/v1/auth/register"):
        assert "limit_req zone=auth" in location_blocks(conf)[f"= {path}"]
    handler = location_blocks(conf)["= /_gateway/errors/too_many_requests"]
    assert "add_header Retry-After 1 always;" in handler
    assert "application/problem+json" in handler


def test_internal_listener_has_no_rate_limit_no_cache_and_routes_internal_and_v1() -> None:
    topology = load_topology(TOPOLOGY)
    public, internal = server_blocks(render_local(topology))
    gateway = topology.gateway
    assert f"listen {gateway.internal_host}:{gateway.internal_port} " in internal
    assert "limit_req" not in internal and "proxy_cache" not in internal
    for service in topology.ordered_services():
        assert f"location /internal/{service.name} {{" in internal
        assert f"location /v1/{service.name} {{" in internal
        assert f"location /v1/{service.name} {{" in public
    assert "location ^~ /internal/" in public and "location ^~ /metrics" in public
    assert "location ^~ /health" in public


def test_micro_cache_only_for_anonymous_catalogue_reads() -> None:
    topology = load_topology(TOPOLOGY)
    blocks = location_blocks(render_local(topology))
    for name in ("products", "categories", "users", "orders", "auth"):
        body = blocks[f"/v1/{name}"]
        cached = "proxy_cache micro;" in body
        assert cached == (name in ("products", "categories"))
        if cached:
            assert "proxy_cache_bypass $http_authorization;" in body
            assert "proxy_no_cache $http_authorization;" in body
            assert "proxy_cache_lock on;" in body
            # nginx keeps an entry through its last whole second: one less than promised.
            valid = topology.gateway.micro_cache_seconds - 1
            assert f"proxy_cache_valid 200 {valid}s;" in body
            assert "X-Cache-Status $upstream_cache_status" in body


def test_proxying_keeps_connections_and_never_trusts_client_addresses() -> None:
    conf = render_local(load_topology(TOPOLOGY))
    assert "proxy_http_version 1.1;" in conf
    assert 'proxy_set_header Connection "";' in conf
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in conf
    assert "$proxy_add_x_forwarded_for" not in conf
    assert "proxy_next_upstream error timeout http_502 http_503;" in conf
    assert "proxy_next_upstream_tries 0;" in conf
    assert "non_idempotent" not in conf
    assert "client_max_body_size 1m;" in conf
    assert "gzip_min_length 1024;" in conf


def test_docs_of_each_service_are_proxied_under_docs() -> None:
    conf = render_local(load_topology(TOPOLOGY))
    assert "location = /docs/users/ {" in conf
    assert "proxy_pass http://users/docs/;" in conf
    assert "proxy_pass http://users/docs/assets/;" in conf
    assert "proxy_pass http://users/openapi.json;" in conf


def location_blocks(conf: str) -> dict[str, str]:
    """`location ... {` head -> its body, for the first server block (public)."""
    public = server_blocks(conf)[0]
    blocks = {}
    for match in re.finditer(r"^        location ([^{]+) \{$", public, re.MULTILINE):
        depth, index = 0, match.end() - 1
        for index in range(match.end() - 1, len(public)):
            depth += {"{": 1, "}": -1}.get(public[index], 0)
            if depth == 0:
                break
        blocks[match.group(1)] = public[match.end() : index]
    return blocks


@pytest.mark.parametrize("profile", ["default", "bench"])
def test_every_proxying_public_location_keeps_the_general_zone(profile: str) -> None:
    # A location with its own limit_req drops the server's: each one repeats `general`.
    topology = load_topology(TOPOLOGY, profile)
    burst = topology.gateway.rate_limits.general.burst
    proxying = {
        head: body
        for head, body in location_blocks(render_local(topology)).items()
        if "proxy_pass" in body and not head.startswith("= /bench/")  # load references
    }
    assert len(proxying) > 10
    for head, body in proxying.items():
        assert f"limit_req zone=general burst={burst} nodelay;" in body, head
        assert "add_header X-Content-Type-Options nosniff always;" in body, head
        assert "proxy_hide_header X-Cache-Key;" in body, head
        assert "gzip off;" in body, head  # when the client sends x-no-compression


def test_every_error_nginx_makes_is_a_problem_with_the_request_id() -> None:
    conf = render_local(load_topology(TOPOLOGY))
    for status in (400, 404, 405, 413, 414, 429, 494, 502, 503, 504):
        target = re.search(rf"error_page {status} = (\S+);", conf)
        assert target is not None, status
        body = location_blocks(conf)[f"= {target.group(1)}"]
        assert "internal;" in body
        assert "default_type application/problem+json;" in body
        assert "add_header X-Request-ID $shopfleet_request_id always;" in body
