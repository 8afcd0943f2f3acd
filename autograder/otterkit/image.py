"""A base image for `otter grade` on a machine that reaches no image registry, only Debian's and PyPI's mirrors.

otter 7 builds one image per assignment `FROM` its `--image` through `docker buildx build`, and the zip's setup.sh
downloads Miniforge from a host such a machine cannot reach. `build_base_image` makes, with debootstrap and
`docker import`, a Debian image that already holds what that set-up would fetch:
- the Debian packages otter's Dockerfile and setup.sh install (so their apt-get steps find them installed);
- a Python virtual environment at the path otter's `run_autograder` activates, holding this machine's torch and
  torchvision (downloaded by this machine's pip, so from its own disk where it keeps them);
- stand-ins for what cannot be fetched: `mamba` (an environment.yml's pip section is installed into that
  environment; `shell hook` and `activate` work), `wget` of the Miniforge installer (a no-op installer), and
  playwright's browser download (skipped: our zips make no PDFs);
- this machine's extra CA certificates (HTTPS through a proxy with its own CA), for apt and pip.
Where the Docker CLI has no buildx plugin (Debian packages none), `ensure_buildx` installs one that runs the
classic builder with the host's network: build containers have no network under a dockerd started with
`--iptables=false`.

    python -m autograder.otterkit.image [--tag autograder-otter-base] [--rebuild]
    otter grade -n mlp -a dist/mlp/autograder/*.zip -o graded --image autograder-otter-base submissions/
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

DEFAULT_TAG = "autograder-otter-base"
OTTER_ENV = "/root/miniforge3/envs/otter-env"  # where otter's run_autograder activates its environment
# What otter 7's Dockerfile and setup.sh apt-get install, and what a venv needs.
PACKAGES = (
    "python3 python3-venv python3-pip ca-certificates curl unzip dos2unix wget jq build-essential "
    "libcurl4-gnutls-dev libxml2-dev libssl-dev libgit2-dev"
).split()
HOST_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
PEM = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


class ImageError(RuntimeError):
    """The base image cannot be built here; the message says what is missing."""


def run(cmd: list[str], what: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    if done.returncode != 0:
        raise ImageError(f"{what} failed ({' '.join(cmd[:3])} ... exit {done.returncode}):\n{done.stderr[-3000:]}")
    return done


def docker_answers() -> str | None:
    """None when a Docker daemon answers, else why not (in one line)."""
    if shutil.which("docker") is None:
        return "no `docker` command on PATH"
    try:
        done = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"],
                              capture_output=True, text=True, timeout=30)  # fmt: skip
    except subprocess.TimeoutExpired:
        return "`docker info` did not answer within 30 s"
    if done.returncode != 0 or not done.stdout.strip():
        lines = (done.stderr.strip() or "no daemon").splitlines()
        return f"no Docker daemon answers (`docker info`: {lines[-1]})"
    return None


def image_exists(tag: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode == 0


# -- buildx ---------------------------------------------------------------------------------------------------------
BUILDX_STAND_IN = """#!/bin/sh
# Stand-in for the docker-buildx CLI plugin, written by autograder.otterkit.image where the Docker CLI has none:
# `buildx build` runs the classic builder with the host's network; `version`, `inspect` and `ls` describe a
# builder of the `docker` driver (what python-on-whales, which otter builds with, asks for).
if [ "$1" = docker-cli-plugin-metadata ]; then
  echo '{"SchemaVersion":"0.1.0","Vendor":"autograder","Version":"v0.0.0","ShortDescription":"classic build"}'
  exit 0
fi
[ "$1" = buildx ] && shift
case "$1" in
  version) echo "github.com/docker/buildx v0.0.0 autograder-stand-in" ;;
  inspect) printf 'Name:   default\\nDriver: docker\\n' ;;
  ls) echo '{"Name":"default","Driver":"docker"}' ;;
  build)
    shift
    set -- "$@" --end--
    while [ "$1" != --end-- ]; do
      case "$1" in
        --load|--pull=false) ;;
        --progress|--metadata-file|--output) shift ;;
        --provenance=*|--sbom=*|--progress=*|--output=*) ;;
        *) set -- "$@" "$1" ;;
      esac
      shift
    done
    shift
    DOCKER_BUILDKIT=0 exec docker build --network host "$@" ;;
  *) echo "buildx stand-in: '$1' is not supported" >&2; exit 1 ;;
esac
"""


def plugin_folder() -> Path:
    config = os.environ.get("DOCKER_CONFIG") or str(Path.home() / ".docker")
    return Path(config) / "cli-plugins"


def ensure_buildx() -> str | None:
    """Install the buildx stand-in where `docker buildx` does not answer; returns where it went, or None."""
    if subprocess.run(["docker", "buildx", "version"], capture_output=True).returncode == 0:
        return None
    target = plugin_folder() / "docker-buildx"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(BUILDX_STAND_IN)
    target.chmod(0o755)
    return str(target)


# -- stand-ins inside the image -------------------------------------------------------------------------------------
WGET_STAND_IN = """#!/bin/sh
# autograder otter image: the Miniforge installer cannot be downloaded here, and the environment it would make is
# already at OTTER_ENV; it becomes an installer that does nothing. Every other download goes to the real wget.
case "$*" in
  *Miniforge3-Linux*)
    out=""; prev=""
    for a in "$@"; do [ "$prev" = "-O" ] && out="$a"; prev="$a"; done
    printf '#!/bin/sh\\nmkdir -p /root/miniforge3/bin\\n' > "${out:-Miniforge3.sh}"
    exit 0 ;;
esac
exec /usr/bin/wget "$@"
""".replace("OTTER_ENV", OTTER_ENV)

MAMBA_STAND_IN = '''#!/usr/bin/python3
"""Stand-in for mamba in the autograder's otter base image: conda's servers cannot be reached, so an environment
is a Python venv under /root/miniforge3/envs, and `env create -f environment.yml` pip-installs the file's pip
section into it (index options whose host does not resolve are left out). Conda packages are not installed."""
import os
import socket
import subprocess
import sys
import urllib.parse

ENVS = "/root/miniforge3/envs"
HOOK = """mamba() {
  if [ "$1" = activate ]; then . "%s/${2:-otter-env}/bin/activate"; else command mamba "$@"; fi
}""" % ENVS


def pip_section(text):
    items, inside, indent = [], False, 0
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.replace(" ", "") == "-pip:":
            inside, indent = True, len(line) - len(line.lstrip())
        elif inside and stripped.startswith("- ") and len(line) - len(line.lstrip()) > indent:
            items.append(stripped[2:].strip().strip("\\'\\""))
        elif inside and stripped:
            inside = False
    return items


def resolves(url):
    try:
        socket.getaddrinfo(urllib.parse.urlparse(url).hostname, 443)
        return True
    except (OSError, UnicodeError):
        return False


def create(args):
    path = args[args.index("-f") + 1]
    text = open(path).read()
    name = args[args.index("-n") + 1] if "-n" in args else next(
        (l.split(":", 1)[1].strip() for l in text.splitlines() if l.startswith("name:")), "otter-env")
    env = os.path.join(ENVS, name)
    if not os.path.exists(os.path.join(env, "bin", "python")):
        subprocess.run([sys.executable, "-m", "venv", env], check=True)
    requirements = []
    for item in pip_section(text):
        option, _, url = item.partition(" ")
        if option in ("--extra-index-url", "--index-url") and not resolves(url):
            print("mamba stand-in: leaving out %s (its host does not resolve here)" % item)
            continue
        requirements.extend(item.split(" ", 1) if item.startswith("-") else [item])
    print("mamba stand-in: pip install into %s: %s" % (env, " ".join(requirements)))
    return subprocess.run([os.path.join(env, "bin", "python"), "-m", "pip", "install", *requirements]).returncode


def main(args):
    if args[:2] == ["env", "create"]:
        return create(args[2:])
    if args[:2] == ["shell", "hook"]:
        print(HOOK)
        return 0
    if args[:1] == ["run"]:
        name = args[args.index("-n") + 1]
        command = args[args.index("-n") + 2:]
        if "playwright install" in " ".join(command):
            print("mamba stand-in: playwright's browser download skipped (no PDFs are made)")
            return 0
        path = os.path.join(ENVS, name, "bin") + os.pathsep + os.environ.get("PATH", "")
        return subprocess.run(command, env={**os.environ, "PATH": path}).returncode
    print("mamba stand-in: nothing to do for `mamba %s`" % " ".join(args))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
'''


# -- the image ------------------------------------------------------------------------------------------------------
def host_suite_and_mirror() -> tuple[str, str]:
    """This machine's Debian release and the mirror its apt uses (the image is made of the same)."""
    suite = "bookworm"
    release = Path("/etc/os-release")
    if release.exists():
        found = re.search(r"^VERSION_CODENAME=(\w+)", release.read_text(), re.M)
        suite = found.group(1) if found else suite
    mirror = "http://deb.debian.org/debian"
    for source in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        text = source.read_text() if source.is_file() else ""
        found = re.search(r"^URIs:\s*(\S+)", text, re.M) or re.search(r"^deb\s+(?:\[[^]]*]\s+)?(\S+)", text, re.M)
        if found and "security" not in found.group(1):
            mirror = found.group(1)
            break
    return suite, mirror


def torch_requirements() -> list[str]:
    """The torch and torchvision this machine grades with, pinned (their local version label dropped)."""
    pins = []
    for name in ("torch", "torchvision"):
        try:
            pins.append(f"{name}=={version(name).split('+')[0]}")
        except PackageNotFoundError:
            pins.append(name)
    return pins


def add_host_certificates(rootfs: Path) -> int:
    """Certificates this machine trusts that Debian's bundle lacks (a proxy's CA), trusted inside the image too."""
    if not HOST_BUNDLE.exists():
        return 0
    inside = set(PEM.findall((rootfs / "etc/ssl/certs/ca-certificates.crt").read_text()))
    extra = [c for c in PEM.findall(HOST_BUNDLE.read_text()) if c not in inside]
    folder = rootfs / "usr/local/share/ca-certificates"
    folder.mkdir(parents=True, exist_ok=True)
    for n, certificate in enumerate(extra):
        (folder / f"autograder-host-{n}.crt").write_text(certificate + "\n")
    if extra:
        run(["chroot", str(rootfs), "update-ca-certificates"], "trusting this machine's certificates in the image")
    return len(extra)


def fill_environment(rootfs: Path, say: Callable[[str], None] = print) -> None:
    """The venv otter's run_autograder activates, with this machine's torch and torchvision in it."""
    wheels = rootfs / "tmp" / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    requirements = torch_requirements()
    say(f"downloading {' '.join(requirements)} with this machine's pip (from its own disk where it keeps them)")
    run([sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(wheels), *requirements], "pip download")
    (rootfs / "etc" / "pip.conf").write_text("[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n")
    run(["chroot", str(rootfs), "/usr/bin/python3", "-m", "venv", OTTER_ENV], "making the environment")
    say(f"installing them into {OTTER_ENV} in the image")
    run(["chroot", str(rootfs), f"{OTTER_ENV}/bin/pip", "install", "--quiet", "--no-index", "--find-links",
         "/tmp/wheels", *requirements], "installing torch in the image")  # fmt: skip
    shutil.rmtree(wheels)


def write_stand_ins(rootfs: Path) -> None:
    for relative, text in [("usr/local/bin/wget", WGET_STAND_IN), ("root/miniforge3/bin/mamba", MAMBA_STAND_IN)]:
        target = rootfs / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        target.chmod(0o755)


def build_base_image(tag: str = DEFAULT_TAG, workdir: Path | None = None, rebuild: bool = False,
                     say: Callable[[str], None] = print) -> bool:  # fmt: skip
    """Build the base image `tag` unless it exists (rebuild: always); True when it was built now."""
    why = docker_answers()
    if why:
        start = "dockerd --iptables=false --ip-masq=false & (Debian: apt-get install docker.io)"
        raise ImageError(f"{why}. As root: {start}")
    shim = ensure_buildx()
    if shim:
        say(f"docker buildx: installed a stand-in that runs the classic builder ({shim})")
    if image_exists(tag) and not rebuild:
        return False
    if os.geteuid() != 0 or shutil.which("debootstrap") is None:
        raise ImageError("building the base image needs root and debootstrap (Debian: apt-get install debootstrap)")
    workdir = workdir or Path(os.environ.get("TMPDIR", "/var/tmp")) / "autograder-otter-image"
    rootfs = workdir / "rootfs"
    shutil.rmtree(rootfs, ignore_errors=True)
    rootfs.mkdir(parents=True)
    try:
        suite, mirror = host_suite_and_mirror()
        say(f"debootstrap {suite} from {mirror} into {rootfs} (a minute or two)")
        run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", suite, str(rootfs), mirror],
            "debootstrap")  # fmt: skip
        add_host_certificates(rootfs)
        fill_environment(rootfs, say)
        write_stand_ins(rootfs)
        say(f"importing {rootfs} as the image {tag}")
        changes = ["--change", "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                   "--change", 'CMD ["/bin/bash"]']  # fmt: skip
        # `with`: the pipe's end is closed and tar waited for, whatever docker import does
        with subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE) as tar:
            run(["docker", "import", *changes, "-", tag], "docker import", stdin=tar.stdout)
        if tar.returncode != 0:
            raise ImageError(f"tar of {rootfs} exited {tar.returncode}: the image {tag} may be incomplete")
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.otterkit.image", description=__doc__.split("\n")[0])
    parser.add_argument("--tag", default=DEFAULT_TAG, help=f"the image's name (default: {DEFAULT_TAG})")
    parser.add_argument("--rebuild", action="store_true", help="build it again even if it exists")
    parser.add_argument("--workdir", type=Path, help="where the root file system is made (about 7 GB while it is)")
    args = parser.parse_args(argv)
    try:
        built = build_base_image(args.tag, args.workdir, args.rebuild)
    except ImageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{'built' if built else 'already there'}: {args.tag} (otter grade ... --image {args.tag})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
