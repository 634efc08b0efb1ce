# -*- coding: utf-8 -*-
# Copyright: apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
options:
  max_keys:
    description:
      - Safety cap. If more keys than this match, the task fails and deletes nothing.
      - V(0) means no cap.
    type: int
    default: 100000
  scan_count:
    description:
      - The C(COUNT) hint of each C(SCAN) call. Larger values mean fewer round trips and
        slightly longer single commands on the server.
    type: int
    default: 1000
  batch_size:
    description:
      - Keys per C(UNLINK) command when deleting. Deletes are pipelined and, on a cluster,
        grouped by hash slot.
    type: int
    default: 1000
  sample_size:
    description:
      - How many matching key names to return in RV(sample) and show in the diff.
    type: int
    default: 20
notes:
  - Keys are found with C(SCAN), never C(KEYS), on every primary of a cluster, and deleted with
    C(UNLINK). Check mode runs the same scan and deletes nothing.
"""
