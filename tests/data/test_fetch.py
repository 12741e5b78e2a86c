"""`labkit fetch` against a small HTTP server on 127.0.0.1 serving archives made here: every
name, and each failure (offline, a wrong checksum, a dropped connection, a truncated archive, a
server that ignores Range, a file placed by hand). Nothing here reaches the internet."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import socket
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

import labkit.data.fetch as fetching
from labkit.cli import main as labkit_main
from labkit.data.cub import read_cub_index
from labkit.data.fetch import ATTEMPTS, SOURCES, FetchError, fetch
from labkit.data.photos import read_class_index
from labkit.data.synthbirds import SynthBirdsSpec, write_synthetic_birds
from labkit.models.weights import WEIGHTS


@pytest.fixture
def server():
    """An HTTP server on 127.0.0.1: `files` {path: bytes} to serve, `drops` {path: how many
    more responses to cut after half their body}, `ignore_range` (paths answered whole), and
    `log` of (path, Range header) per request."""
    state = SimpleNamespace(files={}, drops={}, ignore_range=set(), log=[])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            asked = self.headers.get("Range")
            state.log.append((self.path, asked))
            body = state.files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            start = 0
            if asked and self.path not in state.ignore_range:
                start = int(asked.removeprefix("bytes=").rstrip("-"))
                if start >= len(body):
                    self.send_response(416)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            rest = body[start:]
            self.send_header("Content-Length", str(len(rest)))
            self.end_headers()
            if state.drops.get(self.path, 0) > 0:  # the connection drops halfway
                state.drops[self.path] -= 1
                rest = rest[: len(rest) // 2]
            self.wfile.write(rest)

        def log_message(self, *args) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_port}"
    yield state
    httpd.shutdown()
    httpd.server_close()


def _closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: what an offline machine meets."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/file"


def _serving(server, name: str, bodies: dict[str, bytes], published: bytes | None = None):
    """SOURCES' entry `name` with its files served by `server` at /<file name>, each with the
    checksum of its body (or of `published`, to make it wrong)."""
    source = SOURCES[name]
    remotes = []
    for remote in source.files:
        body = bodies[remote.file_name]
        server.files[f"/{remote.file_name}"] = body
        digest = hashlib.new(remote.algorithm, published or body).hexdigest()
        urls = (f"{server.url}/{remote.file_name}",)
        remotes.append(dataclasses.replace(remote, urls=urls, digest=digest, size=None))
    return {name: dataclasses.replace(source, files=tuple(remotes))}


def _tgz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _jpeg(value: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (12, 10), (value, 255 - value, 40)).save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def cub_tgz(tmp_path_factory) -> bytes:
    spec = SynthBirdsSpec(num_classes=2, train_per_class=2, test_per_class=1, image_size=32)
    folder = write_synthetic_birds(tmp_path_factory.mktemp("cub") / "CUB_200_2011", spec)
    members = {
        f"CUB_200_2011/{p.relative_to(folder)}": p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }
    return _tgz(members)


@pytest.fixture(scope="module")
def flowers_tgz() -> bytes:
    members = {"flower_photos/LICENSE.txt": b"CC-BY photos\n"}
    for c, flower in enumerate(("daisy", "roses", "tulips")):
        for i in range(5):
            members[f"flower_photos/{flower}/{i}.jpg"] = _jpeg(40 * c + i)
    return _tgz(members)


def _idx(array: np.ndarray) -> bytes:
    magic = 2049 if array.ndim == 1 else 2051
    header = magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


@pytest.fixture(scope="module")
def mnist_files() -> dict[str, bytes]:
    """The four IDX files with exactly 200 training and 100 test images per digit."""
    files = {}
    for split, per_class in (("train", 200), ("t10k", 100)):
        labels = np.repeat(np.arange(10), per_class)
        images = np.broadcast_to((labels * 25)[:, None, None], (len(labels), 28, 28))
        files[f"{split}-images-idx3-ubyte.gz"] = _idx(images)
        files[f"{split}-labels-idx1-ubyte.gz"] = _idx(labels)
    return files


# ---------------------------------------------------------------------------------------------
# every name


@pytest.mark.parametrize("name", ["vgg16-weights", "vgg19-weights"])
def test_weights_land_where_the_labs_look(server, tmp_path, monkeypatch, name) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    arch = name.removesuffix("-weights")
    state = {"features.0.weight": torch.ones(2, 3)}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    sources = _serving(server, name, {WEIGHTS[arch].file_name: buffer.getvalue()})
    line = fetch(name, root=tmp_path / "data", progress=False, sources=sources)
    path = tmp_path / "torch" / "hub" / "checkpoints" / WEIGHTS[arch].file_name
    assert WEIGHTS[arch].find(root=tmp_path / "data") == path
    assert torch.load(path, weights_only=True)["features.0.weight"].sum() == 6
    assert "ImageNet weights at" in line and not path.with_name(path.name + ".part").exists()
    requests = len(server.log)
    assert "already at" in fetch(name, root=tmp_path / "data", progress=False, sources=sources)
    assert len(server.log) == requests  # nothing downloaded the second time


def test_the_weights_table_is_torchvisions(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    for arch in ("vgg16", "vgg19"):
        source = SOURCES[f"{arch}-weights"]
        (remote,) = source.files
        assert remote.file_name == WEIGHTS[arch].file_name
        assert remote.urls == (f"https://download.pytorch.org/models/{remote.file_name}",)
        assert remote.algorithm == "sha256" and remote.file_name.split("-")[1][:8] == remote.digest
        assert source.folder(tmp_path) == tmp_path / "hub" / "checkpoints"
    assert SOURCES["cub"].files[0].digest == "97eceeb196236b17998738112f37df78"
    assert [len(s.files) for s in SOURCES.values()] == [1, 1, 1, 1, 4]


def test_cub_is_downloaded_unpacked_and_checked(server, tmp_path, cub_tgz) -> None:
    sources = _serving(server, "cub", {"CUB_200_2011.tgz": cub_tgz})
    line = fetch("cub", root=tmp_path, progress=False, sources=sources)
    index = read_cub_index(tmp_path / "CUB_200_2011")
    assert len(index) == 6 and "6 images (4 train, 2 test), 2 classes" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["CUB_200_2011", "downloads"]
    assert [p.name for p in (tmp_path / "downloads").iterdir()] == ["CUB_200_2011.tgz"]
    assert "already at" in fetch("cub", root=tmp_path, progress=False, sources=sources)


def test_flowers_are_unpacked_and_split(server, tmp_path, flowers_tgz) -> None:
    sources = _serving(server, "flowers", {"flower_photos.tgz": flowers_tgz})
    line = fetch("flowers", root=tmp_path, progress=False, sources=sources)
    assert sorted(p.name for p in (tmp_path / "flower_photos").iterdir()) == [
        "LICENSE.txt", "daisy", "roses", "tulips"]  # fmt: skip
    split = tmp_path / "flower_photos-split"
    assert read_class_index(split / "class_idx.json") == ("daisy", "roses", "tulips")
    assert len(list((split / "val").rglob("*.jpg"))) == 3  # 20% of 5 per class
    assert "15 photos, 3 classes" in line and "train 12, val 3" in line


@pytest.mark.slow
def test_mnist_files_become_the_subset(server, tmp_path, mnist_files) -> None:
    sources = _serving(server, "mnist", mnist_files)
    first = sources["mnist"].files[0]  # the first mirror is gone: the second serves
    gone = dataclasses.replace(first, urls=(f"{server.url}/gone/{first.file_name}", *first.urls))
    sources["mnist"] = dataclasses.replace(
        sources["mnist"], files=(gone, *sources["mnist"].files[1:])
    )
    line = fetch("mnist", root=tmp_path, progress=False, sources=sources)
    assert len(list((tmp_path / "mnist" / "train").rglob("*.png"))) == 2000
    assert len(list((tmp_path / "mnist" / "test").rglob("*.png"))) == 1000
    assert "2,000 training and 1,000 test images" in line
    assert sorted(p.name for p in (tmp_path / "downloads" / "mnist").iterdir()) == sorted(
        mnist_files
    )


# ---------------------------------------------------------------------------------------------
# failures


def test_offline_says_what_failed_and_how_to_place_the_file(tmp_path) -> None:
    remote = dataclasses.replace(SOURCES["cub"].files[0], urls=(_closed_port_url(),))
    sources = {"cub": dataclasses.replace(SOURCES["cub"], files=(remote,))}
    with pytest.raises(FetchError) as caught:
        fetch("cub", root=tmp_path, progress=False, sources=sources)
    message = str(caught.value)
    assert "cannot reach it" in message and "offline" in message
    assert f"put it at {tmp_path / 'downloads' / 'CUB_200_2011.tgz'}" in message
    assert "labkit fetch cub" in message
    assert not (tmp_path / "CUB_200_2011").exists()
    assert list((tmp_path / "downloads").iterdir()) == []


def test_offline_mnist_names_all_four_files_and_their_folder(tmp_path) -> None:
    remotes = [dataclasses.replace(r, urls=(_closed_port_url(),)) for r in SOURCES["mnist"].files]
    sources = {"mnist": dataclasses.replace(SOURCES["mnist"], files=tuple(remotes))}
    with pytest.raises(FetchError) as caught:
        fetch("mnist", root=tmp_path, progress=False, sources=sources)
    message = str(caught.value)
    assert all(remote.file_name in message for remote in remotes)
    assert f"in {tmp_path / 'downloads' / 'mnist'}" in message
    assert not (tmp_path / "mnist").exists()


def test_a_wrong_checksum_keeps_nothing(server, tmp_path, cub_tgz) -> None:
    sources = _serving(server, "cub", {"CUB_200_2011.tgz": cub_tgz}, published=b"another file")
    with pytest.raises(FetchError, match="its md5 is .*, not the published") as caught:
        fetch("cub", root=tmp_path, progress=False, sources=sources)
    assert "put it at" in str(caught.value)
    assert list((tmp_path / "downloads").iterdir()) == []
    assert not (tmp_path / "CUB_200_2011").exists()


def test_a_dropped_connection_is_resumed(server, tmp_path, flowers_tgz) -> None:
    sources = _serving(server, "flowers", {"flower_photos.tgz": flowers_tgz})
    server.drops["/flower_photos.tgz"] = 1
    fetch("flowers", root=tmp_path, progress=False, sources=sources)
    half = len(flowers_tgz) // 2
    assert server.log == [("/flower_photos.tgz", None), ("/flower_photos.tgz", f"bytes={half}-")]
    assert (tmp_path / "downloads" / "flower_photos.tgz").read_bytes() == flowers_tgz


def test_a_download_left_partial_is_resumed_by_the_next_run(server, tmp_path, cub_tgz) -> None:
    sources = _serving(server, "cub", {"CUB_200_2011.tgz": cub_tgz})
    server.drops["/CUB_200_2011.tgz"] = ATTEMPTS
    with pytest.raises(FetchError, match="dropped after .* bytes") as caught:
        fetch("cub", root=tmp_path, progress=False, sources=sources)
    part = tmp_path / "downloads" / "CUB_200_2011.tgz.part"
    assert "the next run resumes it" in str(caught.value) and part.is_file()
    assert 0 < part.stat().st_size < len(cub_tgz)
    assert not (tmp_path / "CUB_200_2011").exists()
    have = part.stat().st_size
    fetch("cub", root=tmp_path, progress=False, sources=sources)
    assert server.log[-1] == ("/CUB_200_2011.tgz", f"bytes={have}-")
    assert read_cub_index(tmp_path / "CUB_200_2011").num_classes == 2


def test_a_server_that_ignores_range_starts_over(server, tmp_path, cub_tgz) -> None:
    sources = _serving(server, "cub", {"CUB_200_2011.tgz": cub_tgz})
    server.ignore_range.add("/CUB_200_2011.tgz")
    (tmp_path / "downloads").mkdir()
    (tmp_path / "downloads" / "CUB_200_2011.tgz.part").write_bytes(b"stale bytes")
    fetch("cub", root=tmp_path, progress=False, sources=sources)
    assert (tmp_path / "downloads" / "CUB_200_2011.tgz").read_bytes() == cub_tgz


def test_a_part_already_whole_is_checked_and_used(server, tmp_path, cub_tgz) -> None:
    sources = _serving(server, "cub", {"CUB_200_2011.tgz": cub_tgz})
    (tmp_path / "downloads").mkdir()
    (tmp_path / "downloads" / "CUB_200_2011.tgz.part").write_bytes(cub_tgz)
    fetch("cub", root=tmp_path, progress=False, sources=sources)  # the server answers 416
    assert server.log == [("/CUB_200_2011.tgz", f"bytes={len(cub_tgz)}-")]
    assert (tmp_path / "CUB_200_2011" / "images.txt").is_file()


@pytest.mark.parametrize("name", ["cub", "flowers"])
def test_a_truncated_archive_leaves_nothing_unpacked(
    server, tmp_path, cub_tgz, flowers_tgz, name
) -> None:
    archive, file_name, folder = {
        "cub": (cub_tgz, "CUB_200_2011.tgz", "CUB_200_2011"),
        "flowers": (flowers_tgz, "flower_photos.tgz", "flower_photos"),
    }[name]
    cut = archive[: len(archive) * 2 // 3]  # whose published checksum matches: cut at the source
    sources = _serving(server, name, {file_name: cut})
    with pytest.raises(FetchError, match=f"cannot unpack .*{file_name}.*truncated"):
        fetch(name, root=tmp_path, progress=False, sources=sources)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["downloads"]  # no half folder
    assert not (tmp_path / folder).exists()


def test_a_file_placed_by_hand_is_checked_and_used(tmp_path, cub_tgz) -> None:
    remote = dataclasses.replace(
        SOURCES["cub"].files[0],
        urls=(_closed_port_url(),),
        digest=hashlib.md5(cub_tgz).hexdigest(),
    )
    sources = {"cub": dataclasses.replace(SOURCES["cub"], files=(remote,))}
    (tmp_path / "downloads").mkdir()
    placed = tmp_path / "downloads" / "CUB_200_2011.tgz"
    placed.write_bytes(cub_tgz[:-10])  # a hand copy cut short
    with pytest.raises(FetchError, match="is there, but its md5 is"):
        fetch("cub", root=tmp_path, progress=False, sources=sources)
    assert placed.is_file()  # a file placed by hand is never deleted
    placed.write_bytes(cub_tgz)
    assert "6 images" in fetch("cub", root=tmp_path, progress=False, sources=sources)


def test_a_broken_cub_folder_stops_before_downloading(server, tmp_path, cub_tgz) -> None:
    sources = _serving(server, "cub", {"CUB_200_2011.tgz": cub_tgz})
    (tmp_path / "CUB_200_2011").mkdir()
    (tmp_path / "CUB_200_2011" / "images.txt").write_text("1 a/b.jpg\n")
    with pytest.raises(FetchError, match="is there but not usable:(.|\n)*classes.txt is missing"):
        fetch("cub", root=tmp_path, progress=False, sources=sources)
    assert server.log == []


def test_a_mirror_url_is_the_file_or_the_folder_holding_it() -> None:
    remote = SOURCES["mnist"].files[0]
    folder = f"https://mirror.example/mnist/{remote.file_name}"
    assert fetching._mirror("https://mirror.example/mnist", remote, several=True) == folder
    assert fetching._mirror("https://mirror.example/mnist/", remote, several=False) == folder
    assert fetching._mirror("https://mirror.example/x.gz", remote, several=False).endswith("x.gz")
    assert fetching._mirror(None, remote, several=True) is None


# ---------------------------------------------------------------------------------------------
# the command


def test_labkit_fetch_lists_fetches_from_a_mirror_and_fails_with_1(
    server, tmp_path, monkeypatch, capsys, flowers_tgz
) -> None:
    monkeypatch.setenv("LABKIT_DATA", str(tmp_path))
    assert labkit_main(["fetch"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in SOURCES) and "not here" in listing
    served = _serving(server, "flowers", {"flower_photos.tgz": flowers_tgz})["flowers"]
    official = dataclasses.replace(served.files[0], urls=(_closed_port_url(),))
    monkeypatch.setitem(fetching.SOURCES, "flowers", dataclasses.replace(served, files=(official,)))
    server.files["/mirror/flower_photos.tgz"] = flowers_tgz
    assert labkit_main(["fetch", "flowers", "--url", f"{server.url}/mirror/", "--quiet"]) == 0
    assert "flower_photos at" in capsys.readouterr().out
    assert server.log == [("/mirror/flower_photos.tgz", None)]
    assert labkit_main(["fetch", "cub", "--url", _closed_port_url(), "--quiet"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("labkit fetch cub: could not download CUB_200_2011.tgz")
    assert "put it at" in out
    assert labkit_main(["fetch", "imagenet"]) == 2
    assert "no imagenet (known: vgg16-weights," in capsys.readouterr().out
