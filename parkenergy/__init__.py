"""The ``parkenergy`` command and the embedded servers it starts when none is configured."""
