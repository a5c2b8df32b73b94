"""The Textual front end. Nothing here opens a socket: connectors do (via emutui.control)."""
