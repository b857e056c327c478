# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Planner tests outside the collection. Marker ``needs_vllm_image``: the test runs vLLM inside the
locally built vllm-cpu image (playbooks/local_images.yml), so a suite runs it after the image build."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS = os.path.join(ROOT, "collections")
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "needs_vllm_image: runs vLLM's own argument parser inside the vllm-cpu image "
        "(HOMELAB_VLLM_IMAGE, default homelab/vllm-cpu:0.32.0); errors when the image is absent")
