import argparse
import pickle

import pytest
import torch
from safetensors.torch import save_file

from gtr.errors import GtRError
from gtr.models.registry import REGISTRY
from gtr.weights import WEIGHTS, WeightFile, read_checkpoint, resolve, select_state_dict


def fake_file(tmp_path, content: bytes = b"weights") -> WeightFile:
    src = tmp_path / "source.bin"
    src.write_bytes(content)
    return WeightFile("Fake", "fake/checkpoint-last.pth", src.as_uri(), 1, "model.checkpoint")


def test_resolution_order(tmp_path, monkeypatch):
    file = fake_file(tmp_path)
    explicit = tmp_path / "mine.pth"
    explicit.write_bytes(b"x")
    root = tmp_path / "root"
    assert resolve(file, explicit, root) == explicit  # 1. explicit path
    local = root / "fake" / "checkpoint-last.pth"
    local.parent.mkdir(parents=True)
    local.write_bytes(b"y")
    assert resolve(file, None, root) == local  # 2. the official layout under the root
    local.unlink()
    monkeypatch.delenv("GTR_OFFLINE")
    assert resolve(file, None, root) == local  # 3. downloaded (here from a file:// URL)
    assert local.read_bytes() == b"weights"
    assert not list(local.parent.glob("*.part"))  # written atomically


def test_missing_weights_offline_is_one_line(tmp_path):
    with pytest.raises(GtRError) as err:
        resolve(REGISTRY["mar_h"].weights, None, tmp_path / "nowhere")
    message = str(err.value)
    assert "\n" not in message
    assert "MAR-H weights not found (downloads disabled)" in message
    assert "mar/mar_huge/checkpoint-last.pth" in message and "dropbox.com" in message
    assert "model.checkpoint=" in message


def test_failed_download_says_why(tmp_path, monkeypatch):
    monkeypatch.delenv("GTR_OFFLINE")
    file = WeightFile("Fake", "fake.pth", (tmp_path / "absent.bin").as_uri(), 1, "model.checkpoint")
    with pytest.raises(GtRError, match="download failed"):
        resolve(file, None, tmp_path)
    assert not (tmp_path / "fake.pth").exists()


def test_explicit_path_missing_or_a_folder(tmp_path):
    with pytest.raises(GtRError, match=r"typo.pth does not exist; fix model.checkpoint=<the file>"):
        resolve(REGISTRY["mar_b"].weights, tmp_path / "typo.pth", tmp_path)
    with pytest.raises(GtRError, match=r"is a folder, not a file; fix model.checkpoint=<the file>"):
        resolve(REGISTRY["mar_b"].weights, tmp_path, tmp_path)


def test_truncated_checkpoint(tmp_path):
    path = tmp_path / "checkpoint-last.pth"
    torch.save({"model": {"w": torch.randn(1000)}}, path)
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(GtRError, match="truncated or not a PyTorch checkpoint"):
        read_checkpoint(path)


class _Payload:
    def __reduce__(self):
        import os
        return (os.system, ("echo this must never run",))


def test_a_checkpoint_holding_code_is_named_not_run(tmp_path, capfd):
    """A pickle that would call os.system is refused (never executed), and the message names the blocked global
    whatever torch's wording ("Unsupported global: GLOBAL os.system", "unsupported GLOBAL posix.system ...")."""
    path = tmp_path / "evil.pth"
    torch.save({"model": _Payload()}, path)
    with pytest.raises(GtRError, match=r"holds Python objects that are not loaded for safety \((os|posix|nt)\.system\)"):
        read_checkpoint(path)
    assert "must never run" not in capfd.readouterr().out


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "kl16.ckpt"
    path.write_text("<html>Dropbox sign-in page</html>")
    with pytest.raises(GtRError, match="truncated or not a PyTorch checkpoint"):
        read_checkpoint(path)


class Payload:
    def __reduce__(self):
        return (print, ("code ran",))


def test_arbitrary_objects_are_never_unpickled(tmp_path, capsys):
    path = tmp_path / "evil.pth"
    torch.save({"model": {}, "payload": Payload()}, path)
    with pytest.raises(GtRError, match="not loaded for safety"):
        read_checkpoint(path)
    assert "code ran" not in capsys.readouterr().out


def test_training_checkpoints_with_args_load(tmp_path):
    path = tmp_path / "checkpoint-last.pth"
    torch.save({"model": {"w": torch.ones(2)}, "model_ema": {"w": torch.zeros(2)}, "epoch": 799,
                "args": argparse.Namespace(model="mar_base", diffloss_d=6)}, path)
    ckpt = read_checkpoint(path)
    assert torch.equal(select_state_dict(ckpt, "model_ema", path)["w"], torch.zeros(2))
    with pytest.raises(GtRError, match="no state dict under 'ema'.*model, model_ema"):
        select_state_dict(ckpt, "ema", path)


def test_legacy_format_and_safetensors(tmp_path):
    legacy = tmp_path / "legacy.pth"
    torch.save({"model": {"w": torch.ones(3)}}, legacy, _use_new_zipfile_serialization=False)
    assert torch.equal(read_checkpoint(legacy)["model"]["w"], torch.ones(3))
    st = tmp_path / "model.safetensors"
    save_file({"w": torch.ones(3)}, st)
    sd = read_checkpoint(st)
    assert torch.equal(select_state_dict(sd, "model_ema", st)["w"], torch.ones(3))  # bare state dicts pass through
    st.write_bytes(st.read_bytes()[:20])
    with pytest.raises(GtRError, match="not a readable safetensors file"):
        read_checkpoint(st)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_pickle_module_is_not_used_for_loading(tmp_path):
    """A plain pickle (not a torch zip archive) is refused, not executed."""
    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(GtRError):
        read_checkpoint(path)


# ---------------------------------------------------------------------------------------------------------------
# Downloads against a local HTTP server: served, cut mid-file, resumed, corrupted, rejected.

class _Server:
    """Serves ``self.body`` at /file with Range support; ``cut_after`` closes the connection after that many bytes
    of a response (once)."""

    def __init__(self, body: bytes):
        import http.server
        import threading
        self.body, self.cut_after, self.ranges = body, None, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                start = 0
                spec = self.headers.get("Range")
                if spec:
                    start = int(spec.split("=")[1].split("-")[0])
                    server.ranges.append(start)
                if start >= len(server.body):
                    self.send_response(416)
                    self.end_headers()
                    return
                data = server.body[start:]
                self.send_response(206 if spec else 200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if server.cut_after is not None:
                    data, server.cut_after = data[:server.cut_after], None
                self.wfile.write(data)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/file"

    def close(self):
        self.httpd.shutdown()


def test_download_resumes_after_a_cut_and_rejects_a_corrupt_file(tmp_path, monkeypatch):
    from gtr.weights import git_blob_sha1
    monkeypatch.delenv("GTR_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    body = bytes(range(256)) * 4000  # ~1 MB
    reference = tmp_path / "reference.bin"
    reference.write_bytes(body)
    server = _Server(body)
    try:
        file = WeightFile("Test file", "stats/test.npz", server.url, 1, "metrics.reference",
                          git_sha1=git_blob_sha1(reference))
        server.cut_after = 300_000
        with pytest.raises(GtRError, match="download failed.*re-running resumes it"):
            resolve(file, None, tmp_path / "root")
        part = tmp_path / "root" / "stats" / ".test.npz.part"
        assert part.stat().st_size == 300_000 and not (tmp_path / "root" / "stats" / "test.npz").exists()
        path = resolve(file, None, tmp_path / "root")  # resumes from byte 300,000
        assert server.ranges == [300_000] and path.read_bytes() == body and not part.exists()
        # a server that hands out other bytes: the complete file fails its checksum and is not kept
        server.body = body[:-1] + b"x"
        with pytest.raises(GtRError, match="not the expected file.*checksum"):
            resolve(file, None, tmp_path / "other")
        assert not list((tmp_path / "other" / "stats").iterdir())
    finally:
        server.close()


def test_official_fid_statistics_resolve_like_weights(tmp_path):
    """``metrics.reference=adm_in256`` is the official file's place in the layout; offline, one line says where
    it comes from; a present file is used as it is."""
    import numpy as np
    from gtr.eval.metrics import Scoring
    assert WEIGHTS["adm_in256_stats"].git_sha1 == "1da4c17607fe959d54999fd098105649a0c05e15"
    scoring = Scoring(reference="adm_in256", weights_root=str(tmp_path), download=False)
    with pytest.raises(GtRError, match=r"not found.*github.com/LTH14/mar.*adm_in256_stats.npz"):
        scoring.reference_file()
    (tmp_path / "fid_stats").mkdir()
    np.savez(tmp_path / "fid_stats" / "adm_in256_stats.npz", mu=np.zeros(4), sigma=np.eye(4))
    assert scoring.reference_file() == tmp_path / "fid_stats" / "adm_in256_stats.npz"
    assert Scoring(reference="some/stats.npz").reference_file().as_posix() == "some/stats.npz"
