"""Simulated nodes in one process (kwok's way): `navio sim` and the scale tests.

    Simulator      N nodes, their heartbeats and pods; fail/recover on demand (simulator.py)
    NodeShape      what every node looks like: capacity, CIDRs, names (nodes.py)
    PodSimulator   one watch of bound pods; Running after a delay, deleted on request (pods.py)
    Heartbeats     paced Lease renewals and node status reports (heartbeat.py)
    control_app    the loopback control endpoint (control.py)

Like a kubelet it reaches the API server only through `navio.client`.
"""

from navio.sim.control import control_app, serve_control
from navio.sim.heartbeat import Heartbeats
from navio.sim.nodes import SIM_ANNOTATION, SIM_LABEL, NodeShape, SimNode
from navio.sim.pods import PodSimulator, SimPod, running_status
from navio.sim.simulator import Simulator, parse_fraction

__all__ = ["Simulator", "NodeShape", "SimNode", "SimPod", "PodSimulator", "Heartbeats",
           "control_app", "serve_control", "parse_fraction", "running_status", "SIM_LABEL",
           "SIM_ANNOTATION"]
