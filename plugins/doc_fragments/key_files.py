# -*- coding: utf-8 -*-
# Copyright (c) apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name


class ModuleDocFragment(object):
    """Owner/group of the key files written by jwt_keypair and jwt_keyset."""

    DOCUMENTATION = r'''
options:
  owner:
    description:
      - User name or uid that owns the files written (for example the user the gateway runs as).
      - Set on the temporary file B(before) any data is written, so the file never exists with another owner.
      - When not set, new files are owned by the user running the module and existing files keep their owner.
    type: str
  group:
    description:
      - Group name or gid of the files written.
      - When not set, new files get the default group and existing files keep theirs.
    type: str
requirements:
  - cryptography >= 3.3 on the managed host (C(pip install cryptography) or the python3-cryptography OS package)
notes:
  - Every file is written atomically - a temporary file in the same directory gets its final mode and owner
    before any data is written, is fsync-ed, then renamed over the destination. An interrupted run leaves either
    the old file or the new one, never a half-written or world-readable key.
'''
