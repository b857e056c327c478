"""The image server's request parsing and the tiny model's tokenizer files, without torch.

server.py and make_tiny_model.py import torch/diffusers lazily, so their pure parts load here;
the same code runs for real in the image (molecule/rollout_faults verify generates a PNG).
"""
import importlib.util
import json
from pathlib import Path

import pytest

FILES = Path(__file__).resolve().parents[2] / "roles/image_server/files"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, FILES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


server = _load("server")
maker = _load("make_tiny_model")


def test_parse_defaults_and_size_forms():
    req = server.parse_request(b'{"prompt": "a cat"}')
    assert (req["steps"], req["width"], req["height"]) == (20, 512, 512)
    assert server.parse_request(b'{"prompt": "x", "size": "64x32"}')[("width")] == 64
    assert server.parse_request(b'{"prompt": "x", "size": "64x32"}')["height"] == 32
    assert server.parse_request(b'{"prompt": "x", "size": 128}')["height"] == 128
    assert server.parse_request(b'{"prompt": "x", "size": 128, "width": 64}')["width"] == 64


@pytest.mark.parametrize("body,fragment", [
    (b"not json", "not JSON"),
    (b"[1]", "JSON object"),
    (b'{"prompt": ""}', "'prompt'"),
    (b'{"prompt": "x", "steps": 0}', "'steps'"),
    (b'{"prompt": "x", "steps": 1000}', "'steps'"),
    (b'{"prompt": "x", "size": "60x64"}', "'width' must be a multiple of 8"),
    (b'{"prompt": "x", "size": 4096}', "'width'"),
])
def test_parse_rejects_with_a_reason(body, fragment):
    with pytest.raises(ValueError, match=fragment):
        server.parse_request(body)


def test_tokenizer_files_cover_every_byte(tmp_path):
    maker.write_tokenizer_files(tmp_path)
    vocab = json.loads((tmp_path / "vocab.json").read_text(encoding="utf-8"))
    chars = maker.bytes_to_unicode()
    assert len(set(chars)) == 256
    for ch in chars:  # any text tokenizes: every byte and its end-of-word form exist
        assert ch in vocab and ch + "</w>" in vocab
    assert {"<|startoftext|>", "<|endoftext|>"} <= set(vocab)
    assert sorted(vocab.values()) == list(range(len(vocab)))
    merges = (tmp_path / "merges.txt").read_text(encoding="utf-8").splitlines()
    assert merges[0].startswith("#version")
    for merge in merges[1:]:  # every merge result is in the vocabulary
        assert merge.replace(" ", "") in vocab


def test_model_maker_never_overwrites(tmp_path, capsys):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model_index.json").write_text("{}")
    assert maker.main([str(tmp_path / "m")]) == 0
    assert capsys.readouterr().out.strip() == f"exists {tmp_path / 'm'}"
