"""`mcja push` through huggingface_hub's real HTTP layer, answered in-process by a fake Hub.

huggingface_hub routes every request through the client made by its ``set_client_factory`` hook; the
test installs an httpx2 MockTransport there, so nothing leaves the process, and records what was sent.
"""

import base64
import json

import httpx2
import pytest
from huggingface_hub.utils import _http

from mcja_hub import MCJAConfig, MCJAModel
from mcja_hub.cli import main


@pytest.fixture
def fake_hub(monkeypatch):
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_OFFLINE", False)  # the transport below is the only "network"
    seen = {"requests": [], "files": {}}

    def handler(request: httpx2.Request) -> httpx2.Response:
        path = request.url.path
        seen["requests"].append((request.method, path))
        if path == "/api/repos/create":
            body = json.loads(request.content)
            seen["create"] = body
            return httpx2.Response(200, json={"url": f"https://huggingface.co/{body['organization']}/{body['name']}"})
        if path == "/api/validate-yaml":  # the client has the Hub check the card's metadata first
            seen["card_yaml"] = json.loads(request.content)["content"]
            return httpx2.Response(200, json={"errors": [], "warnings": []})
        if path.endswith("/preupload/main"):
            files = json.loads(request.content)["files"]
            return httpx2.Response(200, json={"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                                        for f in files]})
        if path.endswith("/commit/main"):
            for line in request.content.decode().splitlines():
                item = json.loads(line)
                if item["key"] == "file":
                    seen["files"][item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                elif item["key"] == "header":
                    seen["message"] = item["value"]["summary"]
            return httpx2.Response(200, json={"commitUrl": "https://huggingface.co/org/mcja-test/commit/" + "a" * 40,
                                              "commitOid": "a" * 40, "pullRequestUrl": None})
        return httpx2.Response(404, json={"error": f"fake hub: no route for {request.method} {path}"})

    _http.set_client_factory(lambda: httpx2.Client(transport=httpx2.MockTransport(handler)))
    yield seen
    _http.set_client_factory(_http.default_client_factory)


def test_push_uploads_the_folder(tmp_path, fake_hub, capsys):
    MCJAModel(MCJAConfig(backbone="resnet18", num_classes=3)).save_pretrained(tmp_path / "m")
    assert main(["push", "--model", str(tmp_path / "m"), "--repo", "org/mcja-test", "--private"]) == 0
    assert fake_hub["create"]["name"] == "mcja-test" and fake_hub["create"]["visibility"] == "private"
    assert set(fake_hub["files"]) == {"config.json", "model.safetensors", "README.md"}
    for name, data in fake_hub["files"].items():
        assert data == (tmp_path / "m" / name).read_bytes(), name
    assert fake_hub["message"] == "Upload MCJA model from m"
    assert "library_name: mcja-hub" in fake_hub["card_yaml"]
    assert "pushed" in capsys.readouterr().out


def test_push_refuses_an_incomplete_or_broken_folder(tmp_path, fake_hub):
    MCJAModel(MCJAConfig(backbone="resnet18", num_classes=3)).save_pretrained(tmp_path / "m")
    (tmp_path / "m" / "README.md").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing \['README.md'\]"):
        main(["--debug", "push", "--model", str(tmp_path / "m"), "--repo", "org/x"])
    MCJAModel(MCJAConfig(backbone="resnet18", num_classes=3)).save_pretrained(tmp_path / "m2")
    cfg = json.loads((tmp_path / "m2" / "config.json").read_text())
    (tmp_path / "m2" / "config.json").write_text(json.dumps({**cfg, "num_classes": 7}))
    with pytest.raises(ValueError, match="classifier.weight"):
        main(["--debug", "push", "--model", str(tmp_path / "m2"), "--repo", "org/x"])
    assert fake_hub["requests"] == []  # nothing was sent
