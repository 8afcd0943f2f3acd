"""`otter grade` in Docker on a machine without registry access (autograder.otterkit.image, bench.otter_grade).

The stand-ins the base image and the Docker CLI get are tested here without Docker. The real run, `otter grade`
of every built-in's examples and of an assignment made with `autograder new` against `autograder grade`, is
marked `docker`: `make otter-check` runs it (`.ci/run` does where it can start dockerd); the default run leaves
it out.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from autograder.otterkit import image
from autograder.otterkit.build import fix_setup

SETUP = """apt-get install -y wget jq build-essential
# install PDF generation dependencies if enabled
if cat /autograder/source/otter_config.json | jq -e '[.pdf, .token] | any'; then
    apt-get install -y texlive-xetex
fi
"""


def stand_in(text: str) -> dict[str, object]:
    namespace: dict[str, object] = {"__name__": "stand_in"}
    exec(compile(text, "mamba", "exec"), namespace)  # noqa: S102 - our own script, loaded as a module
    return namespace


def test_the_mamba_stand_in_reads_the_pip_section_of_otters_environment_file():
    environment = """name: otter-env
channels:
  - conda-forge
dependencies:
  - python=3.13
  - pip
  - jupyter_server
  - pip:
      - otter-grader[grading,plugins]==7.0.0
      - --extra-index-url https://download.pytorch.org/whl/cpu
      - "/autograder/source/pytorch_coursework_autograder-0.1.0-py3-none-any.whl"
"""
    pip_section = stand_in(image.MAMBA_STAND_IN)["pip_section"]
    assert pip_section(environment) == [  # type: ignore[operator]
        "otter-grader[grading,plugins]==7.0.0",
        "--extra-index-url https://download.pytorch.org/whl/cpu",
        "/autograder/source/pytorch_coursework_autograder-0.1.0-py3-none-any.whl",
    ]


def test_the_mamba_stand_ins_shell_hook_activates_the_venv_and_skips_playwrights_download(tmp_path, capsys):
    script = stand_in(image.MAMBA_STAND_IN)
    assert script["main"](["shell", "hook", "--shell", "bash"]) == 0  # type: ignore[operator]
    hook = capsys.readouterr().out
    envs = tmp_path / "envs"
    (envs / "otter-env" / "bin").mkdir(parents=True)
    (envs / "otter-env" / "bin" / "activate").write_text("ACTIVATED=otter-env\n")
    shell = hook.replace("/root/miniforge3/envs", str(envs)) + "\nmamba activate otter-env\necho $ACTIVATED\n"
    assert subprocess.run(["bash", "-c", shell], capture_output=True, text=True).stdout.strip() == "otter-env"
    command = ["run", "-n", "otter-env", "bash", "-c", "playwright install-deps && playwright install chromium"]
    assert script["main"](command) == 0  # type: ignore[operator]
    assert "playwright's browser download skipped" in capsys.readouterr().out


def test_the_wget_stand_in_turns_only_the_miniforge_download_into_a_no_op_installer(tmp_path):
    wget = tmp_path / "wget"
    wget.write_text(image.WGET_STAND_IN.replace("exec /usr/bin/wget", "echo real wget:"))
    wget.chmod(0o755)
    target = tmp_path / "mamba_install.sh"
    url = "https://github.com/conda-forge/miniforge/releases/download/24.1.2-0/Miniforge3-Linux-x86_64.sh"
    subprocess.run([str(wget), "-nv", url, "-O", str(target)], check=True)
    assert target.read_text() == "#!/bin/sh\nmkdir -p /root/miniforge3/bin\n"
    other = subprocess.run([str(wget), "-nv", "https://example.org/pandoc.deb"], capture_output=True, text=True)
    assert other.stdout.strip() == "real wget: -nv https://example.org/pandoc.deb"


def test_the_buildx_stand_in_runs_the_classic_builder_with_the_hosts_network(tmp_path):
    bin_folder = tmp_path / "bin"
    bin_folder.mkdir()
    (bin_folder / "docker").write_text('#!/bin/sh\necho "BUILDKIT=$DOCKER_BUILDKIT $*"\n')
    (bin_folder / "docker").chmod(0o755)
    buildx = bin_folder / "docker-buildx"
    buildx.write_text(image.BUILDX_STAND_IN)
    buildx.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_folder}:{os.environ['PATH']}"}
    # what python-on-whales sends for otter's docker.build(..., build_args=..., tags=..., file=..., load=True)
    args = ["buildx", "build", "--build-arg", "BASE_IMAGE=base", "--load", "--progress", "plain", "--file",
            "/x/Dockerfile", "--tag", "otter-grader:mlp", "--iidfile", "/tmp/id", "/tmp/context"]  # fmt: skip
    done = subprocess.run([str(buildx), *args], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["BUILDKIT=0", "build", "--network", "host", "--build-arg", "BASE_IMAGE=base",
                                   "--file", "/x/Dockerfile", "--tag", "otter-grader:mlp", "--iidfile", "/tmp/id",
                                   "/tmp/context"]  # fmt: skip
    inspect = subprocess.run([str(buildx), "buildx", "inspect"], env=env, capture_output=True, text=True).stdout
    assert inspect.splitlines()[0].split(":")[1].strip() == "default" and "Driver: docker" in inspect


def test_setup_asks_the_config_file_itself_whether_to_install_latex(tmp_path):
    fixed = fix_setup(SETUP)
    assert "cat /autograder/source/otter_config.json |" not in fixed
    assert "jq -e '[.pdf, .token] | any' /autograder/source/otter_config.json 2>/dev/null" in fixed
    if subprocess.run(["which", "jq"], capture_output=True).returncode != 0:
        return
    config = tmp_path / "otter_config.json"
    question = f"jq -e '[.pdf, .token] | any' {config} 2>/dev/null"
    assert subprocess.run(["bash", "-c", question]).returncode != 0  # missing: under otter grade, no LaTeX
    config.write_text('{"pdf": false, "plugins": []}')
    assert subprocess.run(["bash", "-c", question], capture_output=True).returncode != 0
    config.write_text('{"pdf": true}')
    assert subprocess.run(["bash", "-c", question], capture_output=True).returncode == 0


def test_the_image_trusts_the_hosts_extra_certificates_and_pins_its_torch(tmp_path, monkeypatch):
    rootfs = tmp_path / "rootfs"
    bundle = rootfs / "etc/ssl/certs/ca-certificates.crt"
    bundle.parent.mkdir(parents=True)
    debian = "-----BEGIN CERTIFICATE-----\nDEBIAN\n-----END CERTIFICATE-----"
    proxy = "-----BEGIN CERTIFICATE-----\nPROXY\n-----END CERTIFICATE-----"
    bundle.write_text(debian + "\n")
    host = tmp_path / "host.crt"
    host.write_text(f"{debian}\n{proxy}\n")
    monkeypatch.setattr(image, "HOST_BUNDLE", host)
    monkeypatch.setattr(image, "run", lambda cmd, what, **kw: None)  # update-ca-certificates runs in the chroot
    assert image.add_host_certificates(rootfs) == 1
    assert (rootfs / "usr/local/share/ca-certificates/autograder-host-0.crt").read_text() == proxy + "\n"
    import torch

    assert image.torch_requirements()[0] == f"torch=={torch.__version__.split('+')[0]}"


def test_no_docker_daemon_is_a_one_line_reason(monkeypatch, tmp_path):
    fake = tmp_path / "docker"
    refusal = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock."
    fake.write_text(f"#!/bin/sh\necho '{refusal}' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    assert image.docker_answers() == (
        "no Docker daemon answers (`docker info`: Cannot connect to the Docker daemon at unix:///var/run/docker.sock.)"
    )
    with pytest.raises(image.ImageError, match="no Docker daemon answers"):
        image.build_base_image("never-built")


@pytest.fixture
def docker_daemon() -> None:
    why = image.docker_answers()
    if why:
        pytest.skip(f"needs a Docker daemon: {why}")


def to_stderr(line: str) -> None:  # progress of the minutes-long Docker runs, shown with -s or on failure
    print(line, file=sys.stderr)


@pytest.mark.docker
@pytest.mark.slow
def test_otter_grade_in_docker_gives_the_native_per_exercise_scores(tmp_path, docker_daemon):
    from bench.otter_grade import compare, report

    comparisons = compare(tmp_path, image.DEFAULT_TAG, containers=2, say=to_stderr)
    to_stderr(report(comparisons))
    assert {c.assignment for c in comparisons} == {"mlp", "decoding", "spiking", "week3"}
    assert all(c.notebooks >= 2 for c in comparisons)
    assert [d for c in comparisons for d in c.differences] == []


@pytest.mark.docker
@pytest.mark.slow
def test_our_gradescope_zip_in_a_gradescope_shaped_container_gives_the_native_scores_and_messages(
    tmp_path, docker_daemon
):
    from bench.gradescope_docker import prove

    assert prove(tmp_path, image.DEFAULT_TAG, say=to_stderr) == []
