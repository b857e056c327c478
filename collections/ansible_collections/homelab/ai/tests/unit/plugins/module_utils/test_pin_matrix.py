# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import pytest

from ansible_collections.homelab.ai.plugins.module_utils import pin_matrix as pm


def _upper_bound(spec):
    """The '<X' bound of a specifier such as '>=0.27.0,<0.30.0' as a tuple of ints."""
    for part in spec.split(","):
        part = part.strip()
        if part.startswith("<") and not part.startswith("<="):
            return tuple(int(x) for x in part[1:].split("."))
    return None


@pytest.mark.parametrize("version,key", [
    ("2.2.0", "2.2"), ("2.2.2+cu121", "2.2"), ("2.13.0+cpu", "2.13"), ("2.13", "2.13"),
    ("v2.4.1", "2.4"), (" 2.4.0 ", "2.4"),
])
def test_torch_key(version, key):
    assert pm.torch_key(version) == key


@pytest.mark.parametrize("bad", ["", None, "latest", "two.two", "2"])
def test_torch_key_rejects_non_versions(bad):
    with pytest.raises(pm.PinMatrixError, match="not a version"):
        pm.torch_key(bad)


def test_record_pins_for_torch_2_2():
    """The decision record's fix: diffusers<0.30 (torch.xpu) and transformers<5 on torch 2.2."""
    pins = pm.pins_for("2.2.0")
    assert pins["diffusers"] == ">=0.27.0,<0.30.0"
    assert pins["transformers"] == ">=4.51.3,<5.0.0"


def test_newer_base_unlocks_diffusers_0_30():
    for version in ("2.4.0", "2.13.0+cpu"):
        spec = pm.pins_for(version)["diffusers"]
        assert ">=0.30" in spec or _upper_bound(spec) > (0, 30), spec
        lower = [p for p in spec.split(",") if p.startswith(">=")][0][2:]
        assert tuple(int(x) for x in lower.split(".")) >= (0, 30, 0)


def test_every_row_has_upper_bounds_on_the_same_packages():
    """Lesson 4 of the record: upper bounds on everything; no row silently drops a pin."""
    names = None
    for key, row in pm.PIN_MATRIX.items():
        assert names is None or set(row) == names, key
        names = set(row)
        for name, spec in row.items():
            assert _upper_bound(spec) is not None, (key, name, spec)
        assert _upper_bound(row["transformers"]) <= (5, 0, 0), key
        assert key in pm.PIN_NOTES


def test_unknown_torch_version_names_version_and_keys():
    with pytest.raises(pm.PinMatrixError) as exc:
        pm.pins_for("2.7.1")
    msg = str(exc.value)
    assert "2.7.1" in msg and "2.7" in msg
    for key in pm.known_keys():
        assert key in msg


def test_known_keys_sorted_numerically():
    assert pm.known_keys() == ["2.2", "2.4", "2.13"]


def test_overrides_replace_drop_and_validate():
    pins = pm.pins_for("2.13.0", {"diffusers": "==0.29.2", "pillow": "", "accelerate": ">=1.0,<2"})
    assert pins["diffusers"] == "==0.29.2"
    assert "pillow" not in pins
    assert pins["accelerate"] == ">=1.0,<2"
    # the matrix itself is not mutated by an override
    assert pm.PIN_MATRIX["2.13"]["diffusers"] != "==0.29.2"
    assert "pillow" in pm.PIN_MATRIX["2.13"]
    with pytest.raises(pm.PinMatrixError, match="not a version specifier"):
        pm.pins_for("2.13.0", {"diffusers": "0.29.2; rm -rf /"})
    with pytest.raises(pm.PinMatrixError, match="not a package name"):
        pm.pins_for("2.13.0", {"bad name": "==1"})


def test_requirements_lines_sorted():
    lines = pm.requirements_lines({"transformers": "<5", "Diffusers": "==0.29.2", "pillow": ">=1"})
    assert lines == ["Diffusers==0.29.2", "pillow>=1", "transformers<5"]
