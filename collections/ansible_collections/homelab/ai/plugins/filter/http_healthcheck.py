# -*- coding: utf-8 -*-
# Copyright: (c) 2026, homelab.ai contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter: a container healthcheck test that GETs a path over bash's /dev/tcp (module_utils.container_spec)."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.ai.plugins.module_utils.container_spec import http_healthcheck_test


def http_healthcheck(port, path):
    try:
        return http_healthcheck_test(port, path)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    def filters(self):
        return {"http_healthcheck": http_healthcheck}
