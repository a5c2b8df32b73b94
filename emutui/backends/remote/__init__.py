"""Remote lab hosts over SSH.

The laptop side (``ssh``, ``client``, ``connector``) speaks to ``emutui agent``
(``agent``) running on the host over the system ``ssh`` client's stdio, with
JSON-RPC 2.0 (``rpc``). The host's unix sockets (serial hubs) are reached as
OpenSSH streamlocal forwards over the same ControlMaster connection.
"""
