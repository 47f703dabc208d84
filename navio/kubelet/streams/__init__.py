"""Streaming protocols of the kubelet API: the WebSocket channel protocol (exec/attach) and
SPDY/3.1 tunnelled in a WebSocket (port-forward)."""
