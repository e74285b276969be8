"""Adapters: the only code that talks to the network, the database, the mail server and the
scheduler. Thin: they translate between the world and the core's records, and turn
third-party exceptions into digest errors (`raise ... from exc`). Import the core only.
"""
