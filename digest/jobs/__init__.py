"""Jobs: one module per thing the program does, driving the core and the world through
the Protocols of ports.py, which the composition root (cli/wiring.py) satisfies with the
adapters; no job imports an adapter. They return data and print nothing; the CLI and the
web app call them. Every mail leaves through outbox.py.
"""
