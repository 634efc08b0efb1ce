"""Tests of the apigw.ops.monitoring role: its rules under promtool, its inputs against a real gateway's /metrics."""
