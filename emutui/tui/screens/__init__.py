"""Screens: the main layout, help, and small modal dialogs."""
