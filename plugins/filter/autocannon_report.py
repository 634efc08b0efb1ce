# -*- coding: utf-8 -*-
# Copyright (c) apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

DOCUMENTATION = r'''
name: autocannon_report
short_description: Figures of autocannon C(--json) runs checked against thresholds, as a table
version_added: 0.1.0
description:
  - Reads the C(--json) output of one autocannon run per scenario and returns, per scenario, the figures the runbook's
    Benchmark Results table uses (requests per second, latency percentiles, errors), the thresholds they missed, and
    a table of all of them.
  - "Requests per second is autocannon's own C(Req/Sec) average (C(requests.average)). The error rate is
    (non-2xx responses + connection errors and timeouts) / (responses + connection errors and timeouts), in percent."
  - P95 is read from C(latency.p95), which autocannon's command line does not print; the C(apigw.ops.loadtest) role
    runs autocannon through a wrapper that adds it. Without it a C(max_p95_ms) threshold is an error.
  - A run without a single response has no latency figures; a latency threshold then counts as missed.
options:
  _input:
    description:
      - One item per scenario, in the order to report.
      - C(scenario) (name), C(output) (autocannon's C(--json) standard output, or the parsed dict) and optionally
        C(connections) (shown in the table).
    type: list
    elements: dict
    required: true
  thresholds:
    description:
      - Per scenario name, a dict of thresholds; a missing or null threshold is not checked.
      - C(min_req_per_s) (at least), C(max_p50_ms), C(max_p95_ms), C(max_p97_5_ms), C(max_p99_ms) (at most, ms),
        C(max_error_pct) (at most, percent).
    type: dict
    default: {}
seealso:
  - name: autocannon
    description: The HTTP benchmarking tool the runbook's Load Testing section uses.
    link: https://github.com/mcollina/autocannon
author:
  - apigw.ops maintainers (@apigw)
'''

EXAMPLES = r'''
- name: Check one run against the runbook's /healthz figures
  ansible.builtin.set_fact:
    report: >-
      {{ [{'scenario': 'healthz', 'connections': 100, 'output': run.stdout}]
         | apigw.ops.autocannon_report(thresholds={'healthz': {'min_req_per_s': 5000, 'max_p95_ms': 10,
                                                               'max_p99_ms': 20, 'max_error_pct': 0.1}}) }}

- name: Print the table
  ansible.builtin.debug:
    msg: "{{ report.table }}"

- name: Fail with one line when a threshold was missed
  ansible.builtin.fail:
    msg: "Load test missed a threshold: {{ report.misses | join('; ') }}"
  when: report.misses | length > 0
'''

RETURN = r'''
_value:
  description: The report.
  type: dict
  contains:
    results:
      description:
        - One dict per scenario - C(scenario), C(connections), C(req_per_s), C(latency_ms) (C(p50), C(p95),
          C(p97_5), C(p99); null without responses), C(responses), C(non2xx), C(errors), C(timeouts),
          C(statuses) (count per HTTP status), C(error_pct), C(duration_s), C(thresholds), C(misses).
      type: list
      elements: dict
    misses:
      description:
        - Every threshold missed, one string each, naming the scenario, the figure and the threshold.
        - When a scenario that missed got 429 answers, a last string says that the gateway's rate limit refused them.
      type: list
      elements: str
      sample: ["healthz: P95 44 ms > 10 ms (max_p95_ms)"]
    table:
      description: A table of every scenario, one line each after a header; C(figure / threshold) where one is set.
      type: list
      elements: str
'''

import json

from ansible.errors import AnsibleFilterError
from ansible.module_utils.six import string_types

# (threshold name, figure label, unit, figure getter); a min_ threshold is a floor, a max_ one a ceiling
CHECKS = (
    ('min_req_per_s', 'req/s', '', lambda r: r['req_per_s']),
    ('max_p50_ms', 'P50', ' ms', lambda r: r['latency_ms']['p50']),
    ('max_p95_ms', 'P95', ' ms', lambda r: r['latency_ms']['p95']),
    ('max_p97_5_ms', 'P97.5', ' ms', lambda r: r['latency_ms']['p97_5']),
    ('max_p99_ms', 'P99', ' ms', lambda r: r['latency_ms']['p99']),
    ('max_error_pct', 'errors', '%', lambda r: r['error_pct']),
)
THRESHOLDS = frozenset(name for name, _label, _unit, _get in CHECKS)
COLUMNS = ('scenario', 'conns', 'req/s', 'P50 ms', 'P95 ms', 'P97.5 ms', 'P99 ms', 'non-2xx', 'errors', 'error %',
           'result')


def _number(value):
    """A figure as people read it: whole numbers without decimals, others with up to two."""
    if value is None:
        return 'n/a'
    if float(value) == int(value):
        return '{0:,}'.format(int(value))
    return '{0:,.2f}'.format(value).rstrip('0').rstrip('.')


def _parse(output, scenario):
    if isinstance(output, dict):
        return output
    if not isinstance(output, string_types):
        raise AnsibleFilterError('%s: autocannon output must be its --json text or a dict, got %s.'
                                 % (scenario, type(output).__name__))
    # --json prints newline-delimited JSON: the result is the last object line
    for raw in reversed(output.strip().splitlines()):
        line = raw.strip()
        if line.startswith('{'):
            try:
                return json.loads(line)
            except ValueError:
                break
    raise AnsibleFilterError('%s: no autocannon --json result in its output (%s).'
                             % (scenario, output.strip()[-200:] or 'empty'))


def _figures(scenario, data, connections):
    try:
        latency, requests = data['latency'], data['requests']
        responses = sum(int(data.get(key, 0)) for key in ('1xx', '2xx', '3xx', '4xx', '5xx'))
        non2xx, errors = int(data['non2xx']), int(data['errors'])
        answered = responses > 0
        figures = {
            'scenario': scenario,
            'connections': connections if connections is not None else data.get('connections'),
            'req_per_s': float(requests['average']),
            'latency_ms': dict((key, float(latency[key]) if answered and key in latency else None)
                               for key in ('p50', 'p95', 'p97_5', 'p99')),
            'responses': responses,
            'non2xx': non2xx,
            'errors': errors,
            'timeouts': int(data.get('timeouts', 0)),
            'statuses': dict((str(code), int(stats.get('count', 0)))
                             for code, stats in (data.get('statusCodeStats') or {}).items()),
            'error_pct': round(100.0 * (non2xx + errors) / (responses + errors), 4) if responses + errors else 100.0,
            'duration_s': data.get('duration'),
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise AnsibleFilterError('%s: unexpected autocannon --json result (%s: %s).'
                                 % (scenario, type(exc).__name__, exc))
    if answered and 'p95' not in latency:
        figures['latency_ms']['p95'] = None
        figures['no_p95'] = True
    return figures


def _misses(result, thresholds):
    misses = []
    for name, label, unit, get in CHECKS:
        limit = thresholds.get(name)
        if limit is None:
            continue
        if name == 'max_p95_ms' and result.get('no_p95'):
            raise AnsibleFilterError('%s: the autocannon output has no P95 (latency.p95); run autocannon through the '
                                     'apigw.ops.loadtest wrapper, or drop max_p95_ms.' % result['scenario'])
        value = get(result)
        if value is None:
            misses.append('%s: %s n/a (no response) - threshold %s%s (%s)'
                          % (result['scenario'], label, _number(limit), unit, name))
        elif name.startswith('min_') and value < limit:
            misses.append('%s: %s %s < %s (%s)' % (result['scenario'], label, _number(value), _number(limit), name))
        elif name.startswith('max_') and value > limit:
            detail = ''
            if name == 'max_error_pct':
                detail = _error_detail(result)
            misses.append('%s: %s %s%s > %s%s (%s)%s'
                          % (result['scenario'], label, _number(value), unit, _number(limit), unit, name, detail))
    return misses


def _error_detail(result):
    """What the errors were: the non-2xx statuses (429 = a rate limit refused) and the connection errors."""
    codes = ', '.join('%s x%s' % (code, _number(count)) for code, count in sorted(result['statuses'].items())
                      if not code.startswith('2'))
    shown = ' (' + codes + ')' if codes else ''
    parts = ['%s of %s responses non-2xx%s' % (_number(result['non2xx']), _number(result['responses']), shown)]
    if result['errors']:
        parts.append('%s connection errors/timeouts' % _number(result['errors']))
    return ' - ' + ', '.join(parts)


def _cell(value, thresholds, name, unit=''):
    limit = thresholds.get(name)
    text = _number(value) + unit
    if limit is None:
        return text
    return '%s / %s%s' % (text, '>=' if name.startswith('min_') else '<=', _number(limit))


def _row(result, thresholds):
    lat = result['latency_ms']
    return (result['scenario'], _number(result['connections']), _cell(result['req_per_s'], thresholds, 'min_req_per_s'),
            _cell(lat['p50'], thresholds, 'max_p50_ms'), _cell(lat['p95'], thresholds, 'max_p95_ms'),
            _cell(lat['p97_5'], thresholds, 'max_p97_5_ms'), _cell(lat['p99'], thresholds, 'max_p99_ms'),
            _number(result['non2xx']), _number(result['errors']),
            _cell(result['error_pct'], thresholds, 'max_error_pct'),
            'MISSED' if result['misses'] else 'ok')


def _table(rows):
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    return ['| ' + ' | '.join(cell.ljust(width) for cell, width in zip(row, widths)) + ' |' for row in rows]


def autocannon_report(runs, thresholds=None):
    if not isinstance(runs, list):
        raise AnsibleFilterError('autocannon_report: expected a list of runs, got %s.' % type(runs).__name__)
    thresholds = thresholds or {}
    if not isinstance(thresholds, dict):
        raise AnsibleFilterError('autocannon_report: thresholds must be a dict per scenario.')
    results, rows = [], [COLUMNS]
    for run in runs:
        if not isinstance(run, dict) or 'scenario' not in run or 'output' not in run:
            raise AnsibleFilterError('autocannon_report: each run needs scenario and output, got %r.' % (run,))
        scenario = run['scenario']
        limits = thresholds.get(scenario) or {}
        unknown = sorted(set(limits) - THRESHOLDS)
        if unknown:
            raise AnsibleFilterError('%s: unknown threshold %s (known: %s).'
                                     % (scenario, ', '.join(unknown), ', '.join(sorted(THRESHOLDS))))
        result = _figures(scenario, _parse(run['output'], scenario), run.get('connections'))
        result['thresholds'] = dict((key, value) for key, value in limits.items() if value is not None)
        result['misses'] = _misses(result, result['thresholds'])
        result.pop('no_p95', None)
        results.append(result)
        rows.append(_row(result, result['thresholds']))
    misses = [miss for result in results for miss in result['misses']]
    if any('429' in result['statuses'] for result in results if result['misses']):
        misses.append('429 = the gateway\'s rate limit refused this client IP: load-test a gateway whose limits '
                      'allow the load')
    return {'results': results, 'misses': misses, 'table': _table(rows)}


class FilterModule(object):
    def filters(self):
        return {'autocannon_report': autocannon_report}
