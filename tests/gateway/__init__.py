"""Tests of the reference gateway; its package lives in gateway/ (not installed), so put it on the path."""

import os
import sys

GATEWAY_SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "gateway")
if GATEWAY_SRC not in sys.path:
    sys.path.insert(0, GATEWAY_SRC)
