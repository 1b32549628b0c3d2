"""The files in deploy/ name only what exists: commands, paths, ports, routes.

No Docker engine runs here, so the Dockerfile and compose.yaml are parsed and every command,
path and port they name is checked against the project. The systemd units go through
``systemd-analyze verify`` where it exists; the nginx site goes through ``nginx -t`` and then
serves real requests in front of a loopback application (skipped only where nginx is missing:
``apt-get install -y nginx-light``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from multidict import CIMultiDictProxy

from bridge.app import create_app
from bridge.cli import _parser
from bridge.config import DEFAULT_LISTEN, Limits, load_config
from tests.conftest import make_config

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PORT = int(DEFAULT_LISTEN.rpartition(":")[2])
SITE_HOST = "bridge.example.org"
BUILD_TOOLS = ("gcc", "g++", "clang", "build-essential", "make", "python3-dev", "libc6-dev")


def feedfed_args(args: list[str]) -> Any:
    """Parse ``feedfed ARGS`` with the real parser; fail the test when it is no command."""
    try:
        return _parser().parse_args(args)
    except SystemExit:
        pytest.fail(f"`feedfed {shlex.join(args)}` is not a command feedfed knows")


# --- Dockerfile ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def dockerfile_instructions(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continuation line"
    return instructions


def stages(instructions: list[Instruction]) -> tuple[dict[str, str], list[list[Instruction]]]:
    """Global ARG defaults, and the instructions of each stage (its FROM first)."""
    args: dict[str, str] = {}
    found: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            found.append([instruction])
        elif found:
            found[-1].append(instruction)
        elif instruction.keyword == "ARG":
            name, _, default = instruction.args.partition("=")
            args[name] = default
    return args, found


def expand(value: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: variables[m[1] or m[2]], value)


def copy_parts(instruction: Instruction) -> tuple[dict[str, str], list[str], str]:
    """Flags, sources and destination of a COPY (shell or JSON form)."""
    words = shlex.split(instruction.args)
    flags = {}
    while words and words[0].startswith("--"):
        name, _, value = words.pop(0)[2:].partition("=")
        flags[name] = value
    if words and words[0].startswith("["):
        words = json.loads(" ".join(words))
    return flags, words[:-1], words[-1]


def env_pairs(instruction: Instruction) -> dict[str, str]:
    return dict(word.split("=", 1) for word in shlex.split(instruction.args))


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule: the last matching pattern wins, parents count."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        glob = pattern.removeprefix("!").strip("/")
        regex = re.escape(glob).replace(r"\*\*/", "(.*/)?").replace(r"\*", "[^/]*")
        if any(re.fullmatch(regex, candidate) for candidate in candidates):
            result = not negated
    return result


@pytest.fixture(scope="module")
def dockerfile() -> list[Instruction]:
    return dockerfile_instructions((DEPLOY / "Dockerfile").read_text(encoding="utf-8"))


def test_dockerignore_matcher_follows_docker_rules() -> None:
    patterns = ["*", "!bridge", "**/__pycache__"]
    assert ignored(".venv/bin/python", patterns)
    assert not ignored("bridge/cli.py", patterns)
    assert ignored("bridge/store/__pycache__/x.pyc", patterns)


def test_dockerfile_copies_only_what_exists_and_is_in_the_context(
    dockerfile: list[Instruction],
) -> None:
    patterns = [
        line.strip()
        for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    _, found = stages(dockerfile)
    names = [s[0].args.split()[-1] for s in found if " AS " in s[0].args.upper()]
    copied: set[str] = set()
    for instruction in (i for stage in found for i in stage if i.keyword == "COPY"):
        flags, sources, _ = copy_parts(instruction)
        if "from" in flags:
            assert flags["from"] in names, f"COPY --from={flags['from']} names no earlier stage"
            continue
        for source in sources:
            path = ROOT / source
            assert path.exists(), f"COPY {source}: no such file in the repository"
            files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
            for file in files:
                relative = file.relative_to(ROOT).as_posix()
                if "__pycache__" not in relative:
                    assert not ignored(relative, patterns), f"{relative} is outside the context"
            copied.add(path.relative_to(ROOT).as_posix())
    # `pip wheel .` needs the project file, its readme and every package.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert {"pyproject.toml", project["project"]["readme"], *packages} <= copied


def test_dockerfile_final_stage_is_slim_non_root_without_build_tools(
    dockerfile: list[Instruction],
) -> None:
    args, found = stages(dockerfile)
    assert len(found) >= 2, "the Dockerfile must build in one stage and run in another"
    builder, final = found[0], found[-1]
    assert re.match(r"python:3\.11-slim", expand(final[0].args.split()[0], args))
    assert " AS " not in final[0].args.upper() or final[0].args.split()[-1] != "builder"
    assert any("venv /opt/feedfed" in i.args for i in builder if i.keyword == "RUN")
    for instruction in final:
        words = re.findall(r"[\w+.-]+", instruction.args)
        tools = [tool for tool in BUILD_TOOLS if tool in words]
        assert not tools, f"final stage {instruction.keyword} names build tools {tools}"
    users = [i.args for i in final if i.keyword == "USER"]
    assert users, "the final stage runs as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert any(i.keyword == "RUN" and "useradd" in i.args and user in i.args for i in final)


def test_dockerfile_runs_the_feedfed_script_on_the_default_port(
    dockerfile: list[Instruction],
) -> None:
    final = stages(dockerfile)[1][-1]
    entrypoint = json.loads(next(i.args for i in final if i.keyword == "ENTRYPOINT"))
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert entrypoint == ["feedfed"] and scripts["feedfed"] == "bridge.cli:main"
    env: dict[str, str] = {}
    for instruction in (i for i in final if i.keyword == "ENV"):
        env.update(env_pairs(instruction))
    copied = [copy_parts(i)[2] for i in final if i.keyword == "COPY" and "--from" in i.args]
    assert env["PATH"].split(":")[0] == "/opt/feedfed/bin" and "/opt/feedfed" in copied
    assert feedfed_args(json.loads(next(i.args for i in final if i.keyword == "CMD"))).command
    exposed = [int(i.args.split("/")[0]) for i in final if i.keyword == "EXPOSE"]
    assert exposed == [PORT]
    assert env["FEEDFED_LISTEN"] == f"0.0.0.0:{PORT}"
    load_config(
        None,
        env={
            "FEEDFED_LISTEN": env["FEEDFED_LISTEN"],
            "FEEDFED_DATABASE_URL": env["FEEDFED_DATABASE_URL"],
        },
    )


def healthcheck_command(dockerfile: list[Instruction]) -> list[str]:
    final = stages(dockerfile)[1][-1]
    check = next(i.args for i in final if i.keyword == "HEALTHCHECK")
    return list(json.loads(check.split(" CMD ", 1)[1]))


async def run_healthcheck(command: list[str], listen: str) -> int:
    assert command[0] == "python"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *command[1:],
        env={**os.environ, "FEEDFED_LISTEN": listen},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return await asyncio.wait_for(process.wait(), timeout=10)


async def test_dockerfile_healthcheck_asks_healthz_on_the_listen_port(
    dockerfile: list[Instruction], serve: Callable[[web.Application], Awaitable[str]]
) -> None:
    command = healthcheck_command(dockerfile)
    for status, healthy in ((200, True), (503, False)):

        async def answer(request: web.Request, status: int = status) -> web.Response:
            return web.Response(status=status)

        stub = web.Application()
        stub.router.add_get("/healthz", answer)
        port = (await serve(stub)).rpartition(":")[2]
        assert (await run_healthcheck(command, f"0.0.0.0:{port}") == 0) is healthy


async def test_dockerfile_healthcheck_passes_on_the_bridge(
    dockerfile: list[Instruction],
    serve: Callable[[web.Application], Awaitable[str]],
    tmp_path: Path,
) -> None:
    config = make_config(database={"url": f"sqlite:///{tmp_path / 'feedfed.db'}"})
    port = (await serve(create_app(config, run_workers=False))).rpartition(":")[2]
    code = await run_healthcheck(healthcheck_command(dockerfile), f"0.0.0.0:{port}")
    assert code == 0, "the bridge does not answer GET /healthz with 2xx"


# --- compose.yaml -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def feedfed_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose["services"].items()
        if service.get("build", {}).get("dockerfile") == "deploy/Dockerfile"
    }


def test_compose_runs_two_web_and_two_workers_with_real_commands(compose: dict[str, Any]) -> None:
    roles: dict[str, list[str]] = {}
    for name, service in feedfed_services(compose).items():
        build = service["build"]
        assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
        args = feedfed_args(service["command"])
        roles.setdefault(shlex.join(service["command"]), []).append(name)
        assert service["environment"]["FEEDFED_LISTEN"] == f"0.0.0.0:{PORT}"
        assert "@postgres:5432/" in service["environment"]["FEEDFED_DATABASE_URL"]
        if args.command != "migrate":
            assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert len(roles["serve --no-workers"]) == 2, roles
    assert len(roles["worker"]) == 2, roles
    assert roles["migrate"] == ["migrate"]


def test_compose_postgres_has_a_volume_and_a_healthcheck(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    assert postgres["image"].startswith("postgres:15")
    volume = postgres["volumes"][0].split(":")[0]
    assert volume in compose["volumes"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    for service in feedfed_services(compose).values():
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_compose_paths_variables_and_proxy_exist(compose: dict[str, Any]) -> None:
    documented = {
        line.split("=", 1)[0]
        for line in (DEPLOY / ".env.example").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    }
    text = (DEPLOY / "compose.yaml").read_text().replace("$$", "")
    assert set(re.findall(r"\$\{(\w+)", text)) <= documented
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in compose["volumes"], f"{name} mounts undeclared volume {source}"
    proxy = compose["services"]["proxy"]
    assert "443:443" in proxy["ports"]
    mounts = {v.split(":")[0]: v.split(":")[1] for v in proxy["volumes"]}
    assert mounts["./nginx/feedfed.conf"].startswith("/etc/nginx/conf.d/")
    upstream = (DEPLOY / "nginx/feedfed-upstream-compose.conf").read_text()
    assert mounts["./nginx/feedfed-upstream-compose.conf"].startswith("/etc/nginx/conf.d/")
    servers = re.findall(r"^\s*server\s+([\w.-]+):(\d+)", upstream, re.MULTILINE)
    web = {n for n, s in feedfed_services(compose).items() if "--no-workers" in s["command"]}
    assert {name for name, _ in servers} == web and {int(p) for _, p in servers} == {PORT}
    assert set(proxy["depends_on"]) == web


def test_deploy_config_file_is_valid() -> None:
    config = load_config(DEPLOY / "feedfed.toml", env={})
    assert config.base_url.startswith("https://") and config.listen_port == PORT


def test_compose_passes_docker_compose_config(tmp_path: Path) -> None:
    docker = shutil.which("docker")
    probe = (
        subprocess.run([docker or "docker", "compose", "version"], capture_output=True, check=False)
        if docker
        else None
    )
    if probe is None or probe.returncode != 0:
        pytest.skip("the docker compose plugin is not installed: compose.yaml checked by parsing")
    result = subprocess.run(
        [
            docker,
            "compose",
            "--env-file",
            str(DEPLOY / ".env.example"),
            "-f",
            str(DEPLOY / "compose.yaml"),
            "config",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


# --- systemd units ------------------------------------------------------------------------


def unit_entries(path: Path) -> dict[str, list[str]]:
    """``Section.Key`` -> values in order (systemd keys may repeat)."""
    entries: dict[str, list[str]] = {}
    section = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        entries.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return entries


def exec_start_args(entries: dict[str, list[str]], overrides: dict[str, str]) -> list[str]:
    """ExecStart's arguments after the program, with Environment= expanded as systemd does."""
    env: dict[str, str] = {}
    for value in entries.get("Service.Environment", []):
        env.update(word.split("=", 1) for word in shlex.split(value))
    env.update(overrides)
    program, *words = shlex.split(entries["Service.ExecStart"][0])
    assert program.endswith("/bin/feedfed"), program
    args: list[str] = []
    for word in words:
        bare = re.fullmatch(r"\$(\w+)", word)
        # $VAR splits into words (empty: none); ${VAR} is one word.
        args.extend(env[bare[1]].split() if bare else [expand(word, env)])
    return args


UNITS = {"feedfed-web.service": ["serve", "--no-workers"], "feedfed-worker.service": ["worker"]}


@pytest.mark.parametrize("unit", sorted(UNITS))
def test_systemd_unit_starts_a_real_command_hardened(unit: str) -> None:
    entries = unit_entries(DEPLOY / unit)
    args = exec_start_args(entries, {})
    assert args == UNITS[unit]
    feedfed_args(args)
    one = {key: values[-1] for key, values in entries.items()}
    assert one["Service.User"] not in ("root", "0")
    assert one["Service.NoNewPrivileges"] == "yes"
    assert one["Service.ProtectSystem"] == "strict"
    assert one["Service.StateDirectory"] == "feedfed"
    assert one["Service.KillSignal"] == "SIGTERM"
    assert one["Service.Restart"] in ("on-failure", "always")
    assert int(one["Service.TimeoutStopSec"].removesuffix("s")) >= Limits().delivery_timeout


def test_systemd_web_unit_serves_with_workers_on_sqlite() -> None:
    entries = unit_entries(DEPLOY / "feedfed-web.service")
    args = exec_start_args(entries, {"FEEDFED_SERVE_FLAGS": ""})
    assert args == ["serve"] and not feedfed_args(args).no_workers


def test_systemd_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed: units checked by parsing only")
    feedfed = Path(sys.executable).parent / "feedfed"
    assert feedfed.exists()
    copies = []
    for unit in UNITS:
        text = (DEPLOY / unit).read_text(encoding="utf-8")
        assert "/opt/feedfed/bin/feedfed" in text
        # verify checks that the program exists: point it at this checkout's script.
        (tmp_path / unit).write_text(text.replace("/opt/feedfed/bin/feedfed", str(feedfed)))
        copies.append(str(tmp_path / unit))
    result = subprocess.run(
        [analyze, "verify", *copies], capture_output=True, text=True, check=False
    )
    # verify exits 0 on unknown keys and bad values: every line about our units is an error.
    complaints = [line for line in result.stderr.splitlines() if "feedfed-" in line]
    assert result.returncode == 0 and not complaints, result.stderr


# --- nginx --------------------------------------------------------------------------------


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SITE_HOST)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(SITE_HOST)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "fullchain.pem", directory / "privkey.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def substitute(text: str, replacements: dict[str, str]) -> str:
    for old, new in replacements.items():
        assert old in text, f"expected {old!r} in the nginx config"
        text = text.replace(old, new)
    return text


def nginx_setup(
    tmp_path: Path, upstream_file: str, upstream: dict[str, str], ports: tuple[int, int] | None
) -> Path:
    """A main config around a test copy of the site: certificates, cache and ports in tmp."""
    cert, key = self_signed(tmp_path)
    live = f"/etc/letsencrypt/live/{SITE_HOST}"
    site = {
        f"{live}/fullchain.pem": str(cert),
        f"{live}/privkey.pem": str(key),
        "/var/cache/nginx/feedfed": str(tmp_path / "cache"),
    }
    if ports is not None:
        site |= {
            "listen 80;": f"listen 127.0.0.1:{ports[0]};",
            "listen 443 ssl http2;": f"listen 127.0.0.1:{ports[1]} ssl http2;",
            "listen [::]:80;": "",
            "listen [::]:443 ssl http2;": "",
        }
    text = substitute((DEPLOY / "nginx/feedfed.conf").read_text(), site)
    (tmp_path / "site.conf").write_text(text)
    (tmp_path / "upstream.conf").write_text(
        substitute((DEPLOY / "nginx" / upstream_file).read_text(), upstream)
    )
    temp = " ".join(
        f"{kind}_temp_path {tmp_path / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    # As root, nginx's workers would drop to nobody, who cannot enter pytest's tmp_path.
    user = "user root;" if os.geteuid() == 0 else ""
    (tmp_path / "nginx.conf").write_text(
        f"""{user}
pid {tmp_path / "nginx.pid"};
worker_processes 1;
events {{ worker_connections 64; }}
http {{
    access_log off;
    {temp}
    include {tmp_path / "upstream.conf"};
    include {tmp_path / "site.conf"};
}}
"""
    )
    return tmp_path / "nginx.conf"


def nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/sbin/nginx") if Path(p).exists()), None
    )
    if found is None:
        pytest.skip("nginx is not installed (apt-get install -y nginx-light): nginx -t skipped")
    return found


@pytest.mark.parametrize(
    ("upstream_file", "upstream"),
    [
        ("feedfed-upstream.conf", {}),
        # compose's service names resolve only inside compose: loopback stands in for them.
        ("feedfed-upstream-compose.conf", {"web1:": "127.0.0.1:", "web2:": "127.0.0.2:"}),
    ],
)
def test_nginx_config_passes_nginx_t(
    tmp_path: Path, upstream_file: str, upstream: dict[str, str]
) -> None:
    nginx = nginx_binary()
    config = nginx_setup(tmp_path, upstream_file, upstream, None)
    result = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(config), "-e", str(tmp_path / "error.log")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_nginx_config_keeps_negotiation_intact() -> None:
    lines = (DEPLOY / "nginx/feedfed.conf").read_text().splitlines()
    text = "\n".join(line.split("#", 1)[0] for line in lines)
    assert "proxy_set_header Host $http_host;" in text
    key = re.search(r"proxy_cache_key\s+\"([^\"]+)\"", text)
    assert key and "$http_accept" in key[1]
    assert "proxy_ignore_headers" not in text, "Vary and Cache-Control must be honoured"
    assert re.search(r"proxy_cache_methods\s+GET HEAD;", text)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def echo_app() -> web.Application:
    """Stands in for the bridge: says what reached it, negotiates, marks answers public."""
    hits: list[str] = []

    async def document(request: web.Request) -> web.Response:
        hits.append(request.path)
        html = "text/html" in request.headers.get("Accept", "")
        body = {
            "hits": len(hits),
            "host": request.headers.get("Host"),
            "proto": request.headers.get("X-Forwarded-Proto"),
        }
        return web.json_response(
            body,
            content_type="text/html" if html else "application/activity+json",
            headers={"Vary": "Accept", "Cache-Control": "max-age=60, public"},
        )

    async def receive(request: web.Request) -> web.Response:
        hits.append(request.path)
        body = await request.read()
        return web.json_response({"hits": len(hits), "bytes": len(body)}, status=202)

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_get("/users/{handle}", document)
    app.router.add_get("/websub/{handle}", document)
    app.router.add_post("/inbox", receive)
    app.router.add_post("/users/{handle}/inbox", receive)
    app.router.add_post("/websub/{handle}", receive)
    return app


@dataclass(frozen=True)
class Proxy:
    http: aiohttp.ClientSession
    https_port: int
    http_port: int

    async def request(
        self, method: str, path: str, *, host: str = SITE_HOST, **kwargs: Any
    ) -> tuple[int, dict[str, Any], CIMultiDictProxy[str]]:
        headers = {"Host": host, **kwargs.pop("headers", {})}
        url = f"https://127.0.0.1:{self.https_port}{path}"
        async with self.http.request(method, url, headers=headers, ssl=False, **kwargs) as resp:
            data = await resp.json(content_type=None) if resp.status < 300 else {}
            return resp.status, data, resp.headers


@pytest.fixture
async def proxy(
    tmp_path: Path,
    serve: Callable[[web.Application], Awaitable[str]],
    http: aiohttp.ClientSession,
) -> AsyncIterator[Proxy]:
    nginx = nginx_binary()
    upstream_port = (await serve(echo_app())).rpartition(":")[2]
    ports = (free_port(), free_port())
    config = nginx_setup(
        tmp_path, "feedfed-upstream.conf", {"127.0.0.1:8080": f"127.0.0.1:{upstream_port}"}, ports
    )
    process = await asyncio.create_subprocess_exec(
        nginx,
        "-p",
        str(tmp_path),
        "-c",
        str(config),
        "-e",
        str(tmp_path / "error.log"),
        "-g",
        "daemon off;",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", ports[1])
                writer.close()
                await writer.wait_closed()
                break
            assert process.returncode is None, (tmp_path / "error.log").read_text()
            await asyncio.sleep(0.05)
        yield Proxy(http, ports[1], ports[0])
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), timeout=10)


async def test_nginx_passes_host_and_scheme_through(proxy: Proxy) -> None:
    status, body, _ = await proxy.request("GET", "/users/a")
    assert status == 200 and body["host"] == SITE_HOST and body["proto"] == "https"
    # The Host a sender signed, port and all, is what the bridge sees.
    status, body, _ = await proxy.request("GET", "/users/b", host=f"{SITE_HOST}:443")
    assert body["host"] == f"{SITE_HOST}:443"


async def test_nginx_cache_keeps_html_and_json_apart(proxy: Proxy) -> None:
    html = {"Accept": "text/html"}
    activity = {"Accept": "application/activity+json"}
    _, first, headers = await proxy.request("GET", "/users/a", headers=html)
    assert headers["Content-Type"].startswith("text/html")
    _, again, headers = await proxy.request("GET", "/users/a", headers=html)
    assert again["hits"] == first["hits"] and headers["X-Cache-Status"] == "HIT"
    _, json_doc, headers = await proxy.request("GET", "/users/a", headers=activity)
    assert headers["Content-Type"].startswith("application/activity+json")
    assert json_doc["hits"] == first["hits"] + 1
    _, _, headers = await proxy.request("GET", "/users/a", headers=html)
    assert headers["Content-Type"].startswith("text/html") and headers["X-Cache-Status"] == "HIT"
    # A signed fetch may be answered for its signer alone: it reaches the bridge, uncached.
    signed = {**activity, "Signature": 'keyId="https://a.example/actor#main-key"'}
    _, mine, headers = await proxy.request("GET", "/users/a", headers=signed)
    assert mine["hits"] == json_doc["hits"] + 1 and headers["X-Cache-Status"] == "BYPASS"
    _, public, _ = await proxy.request("GET", "/users/a", headers=activity)
    assert public["hits"] == json_doc["hits"]


async def test_nginx_never_caches_inbox_posts_or_websub_challenges(proxy: Proxy) -> None:
    for path in ("/inbox", "/users/a/inbox"):
        _, first, _ = await proxy.request("POST", path, data=b"{}")
        _, second, _ = await proxy.request("POST", path, data=b"{}")
        assert second["hits"] == first["hits"] + 1
    _, first, _ = await proxy.request("GET", "/websub/a?hub.challenge=1")
    _, second, _ = await proxy.request("GET", "/websub/a?hub.challenge=1")
    assert second["hits"] == first["hits"] + 1


async def test_nginx_body_limits_match_the_bridge(proxy: Proxy) -> None:
    limits = Limits()
    for path in ("/inbox", "/users/a/inbox"):
        status, body, _ = await proxy.request("POST", path, data=b"x" * limits.max_inbox_bytes)
        assert status == 202 and body["bytes"] == limits.max_inbox_bytes
        status, _, _ = await proxy.request("POST", path, data=b"x" * (limits.max_inbox_bytes + 1))
        assert status == 413
    status, body, _ = await proxy.request("POST", "/websub/a", data=b"x" * limits.max_feed_bytes)
    assert status == 202 and body["bytes"] == limits.max_feed_bytes
    status, _, _ = await proxy.request("POST", "/websub/a", data=b"x" * 11 * 1024 * 1024 + b"x")
    assert status == 413


async def test_nginx_redirects_plain_http_keeping_the_method(proxy: Proxy) -> None:
    url = f"http://127.0.0.1:{proxy.http_port}/inbox"
    async with proxy.http.post(
        url, data=b"{}", headers={"Host": SITE_HOST}, allow_redirects=False
    ) as response:
        assert response.status == 308
        assert response.headers["Location"] == f"https://{SITE_HOST}/inbox"
