"""Dataset files on disk: where they live, checking them, fetching them, unpacking them.

Every file-backed dataset reads from `paths.data_dir` (default `~/.cache/mia_bench/data`, or
`$MIA_BENCH_DATA`). A missing file is downloaded only with `dataset.download=true`; otherwise
the run stops before any work with a `ConfigError` that names the file, the folder it belongs
in and where to get it. Published checksums are checked with `dataset.verify=true` (default)
and always on a download.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import tarfile
import tempfile
import urllib.error
from dataclasses import dataclass
from pathlib import Path

from mia_bench.errors import ConfigError

log = logging.getLogger(__name__)
DEFAULT_DATA_DIR = "~/.cache/mia_bench/data"
# Offline, a download must fail in seconds, not hang.
DOWNLOAD_TIMEOUT_S = 30


@dataclass(frozen=True)
class Remote:
    """A file as its publisher distributes it.

    filename: its name on disk; urls: where to fetch it, tried in order (empty: no direct
    download, `how` says how to get it); md5 / sha256: published checksums, if any.
    """

    filename: str
    urls: tuple[str, ...] = ()
    md5: str | None = None
    sha256: str | None = None
    how: str = ""

    def where(self) -> str:
        if self.how:
            return self.how
        return "download it from " + " or ".join(self.urls)


def data_root(data_dir: str | os.PathLike | None) -> Path:
    """The folder that holds every dataset's files (`~` expanded)."""
    if data_dir is None:
        data_dir = os.environ.get("MIA_BENCH_DATA", DEFAULT_DATA_DIR)
    return Path(data_dir).expanduser()


def checksum_problem(path: Path, md5: str | None = None, sha256: str | None = None) -> str | None:
    """None if `path` matches every given checksum, else a sentence saying which does not.
    MD5 through torchvision's integrity utilities (torchvision.datasets.utils.calculate_md5),
    as its own dataset classes check the same published sums."""
    from torchvision.datasets.utils import calculate_md5

    if md5 is not None:
        got = calculate_md5(str(path))
        if got != md5:
            return f"{path.name} has MD5 {got}, the published file has {md5}"
    if sha256 is not None:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        if h.hexdigest() != sha256:
            return f"{path.name} has SHA256 {h.hexdigest()}, the published file has {sha256}"
    return None


def verify_file(
    path: Path, dataset: str, source: str, md5: str | None = None, sha256: str | None = None
) -> None:
    """Refuse a file whose published checksum does not match (`dataset.verify=true`)."""
    problem = checksum_problem(path, md5, sha256)
    if problem:
        raise ConfigError(
            "dataset.verify",
            f"{dataset}: {problem} ({path}). Replace it with the official file ({source}), or "
            "set dataset.verify=false to use the file as it is.",
        )


def missing_error(
    dataset: str, what: str, folder: Path, remote: Remote, extra: str = ""
) -> ConfigError:
    """The message a user sees when a dataset's files are not on disk and download is off.
    `extra`: a sentence appended before the hint about paths.data_dir."""
    if remote.urls:
        how = f" ({remote.where()}), or run with dataset.download=true to fetch it."
    else:
        how = f": {remote.how}; it cannot be fetched automatically."
    return ConfigError(
        "dataset.download",
        f"{dataset}: {what} not found in {folder}. Put {remote.filename} there{how}{extra} To "
        "read data from another folder set paths.data_dir=... or $MIA_BENCH_DATA.",
    )


def download(url: str, dest: Path, timeout: float = DOWNLOAD_TIMEOUT_S) -> None:
    """Fetch `url` into `dest` with torchvision's downloader (torchvision.datasets.utils.
    download_url: redirects, Google Drive links, progress), atomically: into a temporary name
    in the same folder, then renamed. `timeout` bounds every socket operation."""
    from torchvision.datasets.utils import download_url

    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    os.close(fd)
    before = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        download_url(url, str(dest.parent), filename=Path(tmp).name)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        socket.setdefaulttimeout(before)


def fetch(remote: Remote, folder: Path, dataset: str) -> Path:
    """Download `remote` into `folder` and check its published checksum; the file is removed
    again if the checksum does not match. Errors name the URL and the folder."""
    if not remote.urls:
        raise ConfigError(
            "dataset.download",
            f"{dataset}: {remote.filename} cannot be downloaded automatically; {remote.how}, "
            f"and put it in {folder}",
        )
    dest = folder / remote.filename
    folder.mkdir(parents=True, exist_ok=True)
    errors = []
    for url in remote.urls:
        log.warning("%s: downloading %s to %s", dataset, url, dest)
        try:
            download(url, dest)
        except (urllib.error.URLError, OSError, TimeoutError) as err:
            errors.append(f"{url}: {getattr(err, 'reason', err)}")
            continue
        problem = checksum_problem(dest, remote.md5, remote.sha256)
        if problem:
            dest.unlink(missing_ok=True)
            errors.append(f"{url}: {problem}")
            continue
        return dest
    raise ConfigError(
        "dataset.download",
        f"{dataset}: could not download {remote.filename} ({'; '.join(errors)}). Without "
        f"network access, fetch it elsewhere and put it in {folder}",
    )


def obtain(
    remote: Remote, folder: Path, dataset: str, *, download: bool, verify: bool, what: str = ""
) -> Path:
    """The path of `remote` in `folder`: checked if present, fetched if absent and allowed."""
    path = folder / remote.filename
    if path.is_file():
        if verify:
            verify_file(path, dataset, remote.where(), remote.md5, remote.sha256)
        return path
    if not download:
        raise missing_error(dataset, what or remote.filename, folder, remote)
    return fetch(remote, folder, dataset)


def extract(archive: Path, dest: Path) -> None:
    """Unpack a tar archive with tarfile's "data" filter (no absolute paths, no links out of
    `dest`, no device files), after its checksum was checked."""
    if not hasattr(tarfile, "data_filter"):  # Python < 3.10.12 / 3.11.4
        raise RuntimeError("unpacking archives safely needs Python >= 3.10.12 (tarfile filters)")
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, EOFError) as err:
        # FilterError (a member that would land outside `dest`, a link out of it) is a
        # TarError too: refused, with the member's name in the message.
        raise ConfigError(
            "paths.data_dir",
            # tarfile's ReadError lists every compression it tried, one per line
            f"{archive} is not a usable tar archive ({type(err).__name__}: "
            f"{' '.join(str(err).split())}); replace it "
            "with the official file (dataset.verify=true checks it)",
        ) from err
