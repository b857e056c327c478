# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The image server's one pin matrix: which diffusers/transformers go with which torch base.

Keyed by the base image's torch version (major.minor). The 2.2 row is the decision record's fix
for the image-server bootloop (diffusers>=0.30 references torch.xpu, absent in torch 2.2;
transformers>=5 is incompatible). Newer bases unlock newer diffusers (Qwen Image Edit 2509 needs
diffusers>=0.30). The 2.13 row is the CPU base this project builds locally; its pins were
installed and imported in that image (see the role's post-build check).

Plain Python, no third-party imports: used by the filter plugin ``homelab.ai.image_server_pins``
and by unit tests directly.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import re

# Every row names the same packages, so a base change never silently drops a pin.
# huggingface-hub is pinned too: transformers<5 needs huggingface-hub<1.0, diffusers>=0.40
# needs huggingface-hub>=1.23 (read from the wheels' metadata), and diffusers 0.27.x/0.28.x import
# huggingface_hub.cached_download, which huggingface-hub 0.26 removed although their metadata
# allows any newer hub (see PIN_NOTES).
PIN_MATRIX = {
    "2.2": {
        "diffusers": ">=0.27.0,<0.30.0",
        "transformers": ">=4.51.3,<5.0.0",
        "huggingface-hub": ">=0.30.0,<1.0",
        "safetensors": ">=0.4.3,<0.7",
        "pillow": ">=10.0,<12",
        # The server's GET /metrics (pure Python, no torch dependency): any row takes it.
        "prometheus-client": ">=0.20.0,<0.27",
    },
    "2.4": {
        "diffusers": ">=0.30.0,<0.36.0",
        "transformers": ">=4.51.3,<5.0.0",
        "huggingface-hub": ">=0.30.0,<1.0",
        "safetensors": ">=0.4.3,<0.7",
        "pillow": ">=10.0,<12",
        # The server's GET /metrics (pure Python, no torch dependency): any row takes it.
        "prometheus-client": ">=0.20.0,<0.27",
    },
    "2.13": {
        "diffusers": ">=0.36.0,<0.40.0",
        "transformers": ">=4.57.0,<5.0.0",
        "huggingface-hub": ">=0.34.0,<1.0",
        "safetensors": ">=0.6.0,<0.9",
        "pillow": ">=11.0,<13",
        # The server's GET /metrics (pure Python, no torch dependency): any row takes it.
        "prometheus-client": ">=0.20.0,<0.27",
    },
}

PIN_NOTES = {
    "2.2": "decision record 2026-02-27: diffusers>=0.30 references torch.xpu (absent in torch 2.2), "
           "transformers>=5 incompatible. Within the row only diffusers 0.29.x imports: 0.27.x/0.28.x "
           "import huggingface_hub.cached_download (gone since huggingface-hub 0.26) and "
           "transformers>=4.51.3 needs huggingface-hub>=0.30; pip picks 0.29.2, the import check guards the rest.",
    "2.4": "torch 2.4 has torch.xpu: unlocks diffusers>=0.30 (Qwen Image Edit 2509). Not built here (no 2.4 wheel offline).",
    "2.13": "local CPU base (torch 2.13.0+cpu, Python 3.11): resolves to diffusers 0.39.0, transformers 4.57.6, "
            "huggingface-hub 0.36.2, imported and generating in the image server. diffusers>=0.40 needs "
            "huggingface-hub>=1.23, which transformers<5 excludes.",
}

_VERSION_RE = re.compile(r"^\s*v?(\d+)\.(\d+)(?:\.\d+)?(?:[.+\-].*)?\s*$")
_SPEC_RE = re.compile(r"^(===|==|~=|!=|<=|>=|<|>)\s*[A-Za-z0-9.*+!_-]+(\s*,\s*(===|==|~=|!=|<=|>=|<|>)\s*[A-Za-z0-9.*+!_-]+)*$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class PinMatrixError(ValueError):
    """A torch version or an override the matrix cannot serve; the message says what to do."""


def torch_key(torch_version):
    """Return the matrix key (major.minor) for a torch version such as '2.13.0+cpu'."""
    text = "" if torch_version is None else str(torch_version)
    match = _VERSION_RE.match(text)
    if not match:
        raise PinMatrixError(
            "torch version %r is not a version (want e.g. '2.2.0' or '2.13.0+cpu'); set "
            "image_server_torch_version or label the base image with org.homelab.torch-version"
            % (text,))
    return "%d.%d" % (int(match.group(1)), int(match.group(2)))


def settle_torch_version(configured, label, image="the base image"):
    """The torch version that picks the matrix row: the configured one (image_server_torch_version) or the
    base image's org.homelab.torch-version label; refused when neither is there or they name another
    major.minor (the image would get pins for a torch it does not have)."""
    configured = "" if configured is None else str(configured).strip()
    label = "" if label is None else str(label).strip()
    if not configured and not label:
        raise PinMatrixError(
            "image_server: the torch version of %s is unknown: it has no org.homelab.torch-version label and "
            "image_server_torch_version is empty. Label the base image or set image_server_torch_version to the "
            "torch it really has." % image)
    if configured and label and torch_key(configured) != torch_key(label):
        raise PinMatrixError(
            "image_server: the torch version of %s contradicts image_server_torch_version (label "
            "org.homelab.torch-version=%s, image_server_torch_version=%s). Label the base image or set "
            "image_server_torch_version to the torch it really has." % (image, label, configured))
    return configured or label


def known_keys():
    return sorted(PIN_MATRIX, key=lambda k: tuple(int(p) for p in k.split(".")))


def pins_for(torch_version, overrides=None):
    """Pins (package -> specifier) for a torch version, with optional per-package overrides.

    An override value of None or '' drops the pin; any other value must be a PEP 440 specifier.
    """
    key = torch_key(torch_version)
    if key not in PIN_MATRIX:
        raise PinMatrixError(
            "no image-server pins for torch %s (key %s); known torch versions: %s. Add a row to "
            "plugins/module_utils/pin_matrix.py after building and importing the pipeline on that "
            "base, or pick a base image whose torch is listed" % (torch_version, key, ", ".join(known_keys())))
    pins = dict(PIN_MATRIX[key])
    for name, spec in (overrides or {}).items():
        if not _NAME_RE.match(str(name)):
            raise PinMatrixError("image_server_pin_overrides: %r is not a package name" % (name,))
        if spec is None or str(spec).strip() == "":
            pins.pop(name, None)
            continue
        spec = str(spec).strip()
        if not _SPEC_RE.match(spec):
            raise PinMatrixError(
                "image_server_pin_overrides[%r] = %r is not a version specifier (want e.g. '==0.29.2' "
                "or '>=0.30,<0.36')" % (name, spec))
        pins[name] = spec
    return pins


def requirements_lines(pins):
    """Requirement lines, sorted by package name, for a requirements.txt."""
    return ["%s%s" % (name, pins[name]) for name in sorted(pins, key=str.lower)]
