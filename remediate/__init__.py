"""The ``remediate`` command line: drills on the local emulator, manual invokes, history."""
