# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the apigw.ops.autocannon_report filter, on the shape of autocannon 8.0.0's --json output
(as the role's wrapper prints it, with latency.p95). The filter with real autocannon runs: tests/roles/test_loadtest.py.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import json

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.apigw.ops.plugins.filter.autocannon_report import FilterModule

REPORT = FilterModule().filters()['autocannon_report']


def output(req_per_s=7254.5, p50=6, p95=9, p97_5=15, p99=18, statuses=None, errors=0, timeouts=0, p95_key=True):
    statuses = statuses if statuses is not None else {'200': 1000}
    latency = {'average': 7.1, 'p50': p50, 'p90': 8, 'p97_5': p97_5, 'p99': p99}
    if p95_key:
        latency['p95'] = p95
    data = {'connections': 100, 'duration': 10.02, 'errors': errors, 'timeouts': timeouts,
            'non2xx': sum(c for s, c in statuses.items() if not s.startswith('2')),
            'statusCodeStats': dict((s, {'count': c}) for s, c in statuses.items()),
            'latency': latency, 'requests': {'average': req_per_s, 'total': 1000}}
    for family in ('1xx', '2xx', '3xx', '4xx', '5xx'):
        data[family] = sum(c for s, c in statuses.items() if s[0] == family[0])
    # --json prints newline-delimited JSON; npm or node may print a warning line first
    return 'a warning line\n' + json.dumps(data) + '\n'


RUNBOOK = {'healthz': {'min_req_per_s': 5000, 'max_p95_ms': 10, 'max_p99_ms': 20, 'max_error_pct': 0.1}}


def test_meets_the_runbook_figures():
    report = REPORT([{'scenario': 'healthz', 'connections': 100, 'output': output()}], thresholds=RUNBOOK)
    assert report['misses'] == []
    result = report['results'][0]
    assert result['req_per_s'] == 7254.5 and result['latency_ms'] == {'p50': 6, 'p95': 9, 'p97_5': 15, 'p99': 18}
    assert result['error_pct'] == 0 and result['responses'] == 1000
    assert report['table'][0].startswith('| scenario | conns | req/s')
    assert report['table'][1].split('|')[3].strip() == '7,254.5 / >=5,000'
    assert report['table'][1].rstrip(' |').endswith('ok')


def test_each_missed_figure_named_with_its_threshold():
    report = REPORT([{'scenario': 'healthz', 'output': output(req_per_s=1114, p95=44, p99=48)}], thresholds=RUNBOOK)
    assert report['misses'] == ['healthz: req/s 1,114 < 5,000 (min_req_per_s)',
                                'healthz: P95 44 ms > 10 ms (max_p95_ms)',
                                'healthz: P99 48 ms > 20 ms (max_p99_ms)']
    assert report['table'][1].rstrip(' |').endswith('MISSED')


def test_errors_count_non2xx_and_connection_errors_and_name_429():
    out = output(statuses={'200': 990, '429': 8}, errors=2, timeouts=1)
    report = REPORT([{'scenario': 'login', 'output': out}], thresholds={'login': {'max_error_pct': 0.1}})
    result = report['results'][0]
    assert result['non2xx'] == 8 and result['errors'] == 2 and result['error_pct'] == 1.0
    assert report['misses'][0] == ('login: errors 1% > 0.1% (max_error_pct) - 8 of 998 responses non-2xx (429 x8), '
                                   '2 connection errors/timeouts')
    assert 'rate limit' in report['misses'][-1]


def test_no_response_has_no_latency_and_misses_latency_thresholds():
    out = output(statuses={}, errors=1150)
    report = REPORT([{'scenario': 'healthz', 'output': out}], thresholds=RUNBOOK)
    assert report['results'][0]['latency_ms']['p95'] is None and report['results'][0]['error_pct'] == 100
    assert 'healthz: P95 n/a (no response) - threshold 10 ms (max_p95_ms)' in report['misses']


def test_null_threshold_not_checked_and_shown_without_it():
    report = REPORT([{'scenario': 'healthz', 'output': output(req_per_s=10)}],
                    thresholds={'healthz': {'min_req_per_s': None}})
    assert report['misses'] == [] and report['results'][0]['thresholds'] == {}
    assert report['table'][1].split('|')[3].strip() == '10'


@pytest.mark.parametrize('runs, thresholds, message', [
    ([{'scenario': 'healthz', 'output': 'npm ERR! something'}], {}, 'healthz: no autocannon --json result'),
    ([{'scenario': 'healthz', 'output': '{"latency": {}}'}], {}, 'healthz: unexpected autocannon --json result'),
    ([{'scenario': 'healthz', 'output': output(p95_key=False)}], RUNBOOK, 'has no P95'),
    ([{'scenario': 'healthz', 'output': output()}], {'healthz': {'min_rps': 1}}, 'unknown threshold min_rps'),
    ([{'output': output()}], {}, 'each run needs scenario and output'),
    ('not a list', {}, 'expected a list of runs'),
])
def test_bad_input_one_line(runs, thresholds, message):
    with pytest.raises(AnsibleFilterError, match=message):
        REPORT(runs, thresholds=thresholds)
