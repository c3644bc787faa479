"""Compose files: finding, round-trip reading, interpolation, merging and patching."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.stacks import DATA, EXAMPLE

from wheeldock.compose import files as compose
from wheeldock.errors import InvalidConfig, NotFound

GOLDEN = DATA / "golden"
FIXTURES = [
    EXAMPLE / "docker-compose.yaml",
    DATA / "flask" / "compose.yaml",
    DATA / "worker" / "docker-compose.yml",
    DATA / "worker" / "docker-compose.override.yml",
    DATA / "nested" / "compose.yaml",
]


def _patch_for(names: tuple[str, ...], source: str, *, ca: bool) -> compose.Patch:
    services = tuple(
        compose.ServicePatch(
            name=n,
            build={
                "context": ".",
                "dockerfile": f"Dockerfile.{n}",
                "network": "host",
                **({"secrets": ["ca"]} if ca else {}),
            },
            image=f"demo-{n}:wheeldock",
            drop_keys=("command", "working_dir"),
            drop_volumes=(source,),
        )
        for n in names
    )
    return compose.Patch(services, {"ca": "/etc/ssl/certs/proxy-ca.pem"} if ca else {})


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_unpatched_file_round_trips_byte_for_byte(path: Path) -> None:
    loaded = compose.load(path)
    assert compose.dump(loaded) == loaded.text


@pytest.mark.parametrize(
    ("fixture", "names", "source", "golden"),
    [
        (EXAMPLE / "docker-compose.yaml", ("calidda-api", "srv-img"), "./vcc-totem", "cb-totem"),
        (DATA / "flask" / "compose.yaml", ("web",), "./web", "flask"),
        (DATA / "nested" / "compose.yaml", ("api",), "./svc", "nested"),
        (DATA / "worker" / "docker-compose.yml", ("worker",), "./worker", "worker"),
    ],
)
def test_patch_matches_golden_file(
    fixture: Path, names: tuple[str, ...], source: str, golden: str
) -> None:
    out = compose.patch(compose.load(fixture), _patch_for(names, source, ca=True), primary=True)
    assert out == (GOLDEN / f"{golden}.compose.yaml").read_text()


def test_patch_keeps_comment_that_introduces_the_next_service() -> None:
    text = (
        "services:\n"
        "  app:\n"
        "    image: python:3.11-slim\n"
        "    command: sh -c 'pip install -r r.txt && python a.py'\n"
        "    # the next service is the database\n"
        "    # (second line)\n"
        "    restart: always\n"
        "    volumes:\n"
        "      - ./src:/src\n"
        "\n"
        "  # redis, untouched\n"
        "  cache:\n"
        "    image: redis\n"
    )
    cf = compose.parse(text, Path("compose.yaml"))
    out = compose.patch(cf, _patch_for(("app",), "./src", ca=False), primary=True)
    assert (
        "    # the next service is the database\n    # (second line)\n    restart: always\n" in out
    )
    assert out.endswith("\n\n  # redis, untouched\n  cache:\n    image: redis\n")
    assert "command" not in out and "volumes" not in out


def test_patch_without_matching_service_returns_the_text_unchanged() -> None:
    cf = compose.load(DATA / "worker" / "docker-compose.override.yml")
    out = compose.patch(cf, _patch_for(("other",), "./x", ca=False), primary=False)
    assert out == cf.text


def test_patch_keeps_named_volumes_and_other_mounts() -> None:
    text = (
        "services:\n"
        "  app:\n"
        "    image: python:3.11\n"
        "    volumes:\n"
        "      - ./src:/src\n"
        "      - data:/var/data\n"
        "volumes:\n"
        "  data:\n"
    )
    out = compose.patch(
        compose.parse(text, Path("c.yaml")), _patch_for(("app",), "./src", ca=False), primary=True
    )
    assert "      - data:/var/data\n" in out
    assert "./src" not in out


def test_secrets_merge_into_an_existing_top_level_block() -> None:
    text = "services:\n  app:\n    image: python:3.11\nsecrets:\n  token:\n    file: ./t\n"
    out = compose.patch(
        compose.parse(text, Path("c.yaml")), _patch_for(("app",), "./src", ca=True), primary=True
    )
    assert out.endswith(
        "secrets:\n  token:\n    file: ./t\n  ca:\n    file: /etc/ssl/certs/proxy-ca.pem\n"
    )


def test_invalid_yaml_names_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "compose.yaml"
    path.write_text("services:\n  app:\n    image: python\n   command: [oops\n")
    with pytest.raises(InvalidConfig) as info:
        compose.load(path)
    message = info.value.message
    assert str(path) in message
    assert "line 4" in message and "column" in message
    assert "fix:" in message


def test_top_level_list_is_not_a_compose_file(tmp_path: Path) -> None:
    path = tmp_path / "compose.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(InvalidConfig, match="not a compose file"):
        compose.load(path)


def test_find_files_prefers_compose_yaml_and_adds_its_override(tmp_path: Path) -> None:
    for name in ("docker-compose.yml", "compose.yaml", "compose.override.yaml"):
        (tmp_path / name).write_text("services: {}\n")
    assert compose.find_files(tmp_path) == (
        tmp_path / "compose.yaml",
        tmp_path / "compose.override.yaml",
    )


def test_find_files_without_compose_file_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=r"compose\.yaml"):
        compose.find_files(tmp_path)


def test_files_named_with_f_are_taken_in_order_without_the_default_override(
    tmp_path: Path,
) -> None:
    for name in ("compose.yaml", "compose.override.yaml", "compose-consumer.yml", "dev.yml"):
        (tmp_path / name).write_text("services: {}\n")
    assert compose.find_files(tmp_path, ["compose-consumer.yml", "dev.yml"], {}) == (
        tmp_path / "compose-consumer.yml",
        tmp_path / "dev.yml",
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"COMPOSE_FILE": "a.yml:b.yml"}, ("a.yml", "b.yml")),
        ({"COMPOSE_FILE": "a.yml;b.yml", "COMPOSE_PATH_SEPARATOR": ";"}, ("a.yml", "b.yml")),
        ({"COMPOSE_FILE": ""}, ("compose.yaml",)),
    ],
    ids=["path-separator", "own-separator", "empty"],
)
def test_compose_file_names_the_files_as_docker_compose_reads_it(
    tmp_path: Path, env: dict[str, str], expected: tuple[str, ...]
) -> None:
    for name in ("compose.yaml", "a.yml", "b.yml"):
        (tmp_path / name).write_text("services: {}\n")
    assert compose.find_files(tmp_path, (), env) == tuple(tmp_path / n for n in expected)


def test_f_wins_over_compose_file(tmp_path: Path) -> None:
    for name in ("a.yml", "b.yml"):
        (tmp_path / name).write_text("services: {}\n")
    assert compose.find_files(tmp_path, ["b.yml"], {"COMPOSE_FILE": "a.yml"}) == (
        tmp_path / "b.yml",
    )


@pytest.mark.parametrize(
    ("chosen", "env", "source"),
    [(["missing.yml"], {}, "-f"), ((), {"COMPOSE_FILE": "missing.yml"}, "COMPOSE_FILE")],
)
def test_a_named_compose_file_that_is_missing_is_named_with_where_it_came_from(
    tmp_path: Path, chosen: list[str], env: dict[str, str], source: str
) -> None:
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    with pytest.raises(NotFound, match=rf"missing\.yml \({source}\) does not exist") as err:
        compose.find_files(tmp_path, chosen, env)
    assert err.value.path == tmp_path / "missing.yml"


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("${PORT:-8000}", {}, "8000"),
        ("${PORT:-8000}", {"PORT": ""}, "8000"),
        ("${PORT-8000}", {"PORT": ""}, ""),
        ("${PORT:-8000}", {"PORT": "9001"}, "9001"),
        ("$PORT/x", {"PORT": "1"}, "1/x"),
        ("$${PORT}", {"PORT": "1"}, "${PORT}"),
        ("${A:+yes}", {"A": "1"}, "yes"),
        ("${A:?must be set}", {}, ""),
        ("no vars", {}, "no vars"),
    ],
)
def test_interpolate_follows_compose_rules(text: str, env: dict[str, str], expected: str) -> None:
    assert compose.interpolate(text, env) == expected


def test_override_file_merges_environment_and_replaces_scalars() -> None:
    files = [
        compose.load(DATA / "worker" / "docker-compose.yml"),
        compose.load(DATA / "worker" / "docker-compose.override.yml"),
    ]
    merged = compose.merged_services(files)
    assert merged["worker"]["environment"] == {"JOBS_INTERVAL": "0.5"}
    assert merged["worker"]["image"] == "python:3.11"


def test_environment_list_form_becomes_a_mapping() -> None:
    assert compose.environment({"environment": ["A=1", "B", "C=x=y"]}) == {
        "A": "1",
        "B": None,
        "C": "x=y",
    }


def test_dotenv_is_overridden_by_the_process_environment(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("# c\nPORT=1\nexport NAME='shop'\n")
    env = compose.interpolation_env(tmp_path, {"PORT": "2"})
    assert env["PORT"] == "2" and env["NAME"] == "shop"


REAL_SHAPED = """\
# Stack as people write it: mixed indentation per service, quotes, flow lists, comments.
name: "shop"   # the compose project
x-common: &common
  restart: 'unless-stopped'
services:
    db:
        image: "postgres:16"          # pinned
        environment:
            POSTGRES_PASSWORD: 'secret'
        ports: [ "5432:5432" ]

    api:
      <<: *common
      image: python:3.11-slim   # the old way
      working_dir: /app
      command: sh -c "pip install -r requirements.txt && uvicorn main:app --host 0.0.0.0"
      volumes:
        - ./api:/app:rw   # the code
        - uploads:/app/uploads
      ports:
        - "8001:8000"
      # the job after it runs once
    job:
       image: 'python:3.11'
       command: ["sh", "-c", "pip install -r requirements.txt && python /jobs/run.py"]
       volumes:
       -   ./jobs:/jobs
volumes:
  uploads: {}
"""


def _real_patch() -> compose.Patch:
    return compose.Patch(
        (
            compose.ServicePatch(
                "api",
                {"context": ".", "dockerfile": "Dockerfile.api"},
                "shop-api:wheeldock",
                drop_keys=("command", "working_dir"),
                drop_volumes=("./api",),
                add_volumes=("./api/events:/app/events",),
            ),
        )
    )


def _untouched(text: str, start: str, end: str | None) -> str:
    tail = text[text.index(start) :]
    return tail[: tail.index(end)] if end else tail


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_patch_touches_only_what_it_changes(newline: str) -> None:
    text = REAL_SHAPED.replace("\n", newline)
    out = compose.patch(compose.parse(text, Path("compose.yaml")), _real_patch(), primary=True)
    head = text[: text.index("    api:")]
    assert out.startswith(head)  # header comments, anchors, the db service byte for byte
    job = _untouched(text, "    job:", None)
    assert out.endswith(job)  # the service after it, with its 3-space indent and odd dashes
    api = _untouched(out, "    api:", "    job:")
    nl = newline
    assert api == (
        f"    api:{nl}"
        f"      <<: *common{nl}"
        f"      build:{nl}"
        f"        context: .{nl}"
        f"        dockerfile: Dockerfile.api{nl}"
        f"      image: shop-api:wheeldock{nl}"
        f"      volumes:{nl}"
        f"        - ./api/events:/app/events{nl}"
        f"        - uploads:/app/uploads{nl}"
        f"      ports:{nl}"
        f'        - "8001:8000"{nl}'
        f"      # the job after it runs once{nl}"
    )


def test_a_patched_file_without_a_final_line_break_stays_valid() -> None:
    text = "services:\n  app:\n    image: python:3.11\n    volumes:\n      - ./src:/src"
    out = compose.patch(
        compose.parse(text, Path("c.yaml")), _patch_for(("app",), "./src", ca=True), primary=True
    )
    data = compose.parse(out, Path("c.yaml")).data
    assert data["secrets"]["ca"]["file"] == "/etc/ssl/certs/proxy-ca.pem"
    assert "volumes" not in data["services"]["app"]


@pytest.mark.parametrize(
    ("entry", "matches"),
    [
        ("./web:/app", True),
        ("web:/app", False),  # a named volume called web
        ({"type": "bind", "source": "./web", "target": "/app"}, True),
        ({"type": "bind", "source": "./other", "target": "/app"}, False),
        ("./web/../web:/app:ro", True),
    ],
)
def test_a_volume_matches_the_absolute_source_compose_config_gives(
    tmp_path: Path, entry: object, matches: bool
) -> None:
    (tmp_path / "web").mkdir()
    assert compose.volume_matches(entry, (str(tmp_path / "web"),), tmp_path) is matches
