"""Wire formats shared by a backend and the emulator of its repository.

A module here describes what travels on the wire (settings a server may vary, names and
shapes both sides must agree on). Neither the backend nor the emulator owns it: both import
it, and neither imports the other.
"""
